// Peer (a): the straightforward tutorial approach in Node. One image at a time: read the
// file, resize with sharp, convert HWC uint8 to a CHW float tensor by hand, run a default
// onnxruntime session, softmax + top-5. No batching, no overlap, default session options.
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { workerMain } from '../lib/child.ts';
import { cpuSecondsSince } from '../lib/stats.ts';

interface NaiveArgs {
  readonly modelPath: string;
  readonly files: readonly string[];
  readonly seconds: number;
  readonly minImages: number;
}

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

async function imageToTensor(path: string): Promise<ort.Tensor> {
  const input = await readFile(path);
  // Resize(256) + CenterCrop(224), as in the torchvision recipe: cover a 256 square, cut its centre.
  const { data, info } = await sharp(input)
    .rotate()
    .resize(256, 256, { fit: 'cover' })
    .extract({ left: 16, top: 16, width: 224, height: 224 })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const pixels = info.width * info.height;
  const floats = new Float32Array(3 * pixels);
  for (let i = 0; i < pixels; i++) {
    for (let c = 0; c < 3; c++) {
      floats[c * pixels + i] = ((data[i * 3 + c] ?? 0) / 255 - (MEAN[c] ?? 0)) / (STD[c] ?? 1);
    }
  }
  return new ort.Tensor('float32', floats, [1, 3, 224, 224]);
}

function top5(logits: Float32Array): Array<{ index: number; score: number }> {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps
    .map((e, index) => ({ index, score: e / sum }))
    .sort((a, b) => b.score - a.score)
    .slice(0, 5);
}

await workerMain<
  NaiveArgs,
  { images: number; seconds: number; imagesPerSecond: number; cpuSecondsPerImage: number }
>(async (args) => {
  const session = await ort.InferenceSession.create(args.modelPath);
  const label = async (path: string) => {
    const tensor = await imageToTensor(path);
    const output = await session.run({ [session.inputNames[0] as string]: tensor });
    const logits = output[session.outputNames[0] as string]?.data as Float32Array;
    return top5(logits);
  };
  await label(args.files[0] as string); // warm-up, not timed

  let images = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  while (performance.now() - started < args.seconds * 1000 || images < args.minImages) {
    await label(args.files[images % args.files.length] as string);
    images++;
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    images,
    seconds,
    imagesPerSecond: images / seconds,
    cpuSecondsPerImage: cpuSecondsSince(cpu) / images,
  };
});
