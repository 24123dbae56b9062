import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { errorMessage } from '../../shared/errors.ts';
import { DEFAULT_IMAGE_LIMITS, preprocessInto } from '../../shared/image/preprocess.ts';
import { readExpectedLabels } from '../../shared/labeling/accuracy.ts';
import { type InputSpec, inputDims, loadModelBundle } from '../../shared/model/manifest.ts';
import { quantizeModel } from '../../shared/model/quantize.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { CLASSIFY } from '../../shared/settings.ts';
import { bf16Probe } from '../lib/bf16.ts';
import { CACHE_DIR, runNodeWorker } from '../lib/child.ts';
import type { Context } from '../lib/context.ts';
import { hasFashionMnist, png, readImages, readLabels, writePngs } from '../lib/fashion-mnist.ts';
import type { Int8Data, Int8Row } from '../lib/types.ts';
import type { InferArgs, InferResult } from '../workers/infer.ts';

const DIR = join(CACHE_DIR, 'int8');
/** What issue 13 asks of an INT8 default: both must hold before the default changes. */
export const INT8_TARGETS = { speedup: 1.6, agreement: 0.99 } as const;

/**
 * INT8 against FP32 through `labeler model quantize`: for the bundled model, calibrated on
 * the Fashion-MNIST train split and compared on the whole test split (top-1 agreement and
 * accuracy); for B0 at 224 px (random weights) speed only. Speed is the infer worker's
 * (the Classifier) at the stack's batch size, FP32 and INT8 taking turns. Then what
 * onnxruntime's CPU provider does with a BF16 graph.
 */
export async function int8Section(ctx: Context): Promise<Int8Data> {
  const cfg = ctx.config.int8;
  const threads = ctx.data('inference')?.chosen.threads ?? ctx.machine.availableParallelism;
  const rows: Int8Row[] = [];

  const fashion = hasFashionMnist();
  const calibration = fashion
    ? await writePngs(await readImages('train'), join(DIR, 'fashion-train'), cfg.calibrationImages)
    : (await readdir(join(DEFAULT_MODEL_DIR, 'samples'))).map((f) => join(DEFAULT_MODEL_DIR, 'samples', f));
  const calibrationSource = fashion
    ? `first ${calibration.length} images of the Fashion-MNIST train split`
    : `the ${calibration.length} bundled samples (apt-get install dataset-fashion-mnist for the splits)`;
  if (!fashion) ctx.log(`no Fashion-MNIST at /usr/share/datasets: calibrating and comparing on the samples`);

  const models = [
    {
      name: 'fashion-efficientnet, 28 px',
      dir: DEFAULT_MODEL_DIR,
      calibration,
      calibrationSource,
      compare: true,
    },
    {
      name: 'B0, 224 px (random weights)',
      dir: ctx.b0.dir,
      calibration: calibration.slice(0, cfg.b0CalibrationImages),
      calibrationSource: `${cfg.b0CalibrationImages} Fashion-MNIST images upscaled (random weights: speed only)`,
      compare: false,
    },
  ];
  for (const model of models) {
    const out = join(DIR, `${model.name.split(',')[0]}-int8`);
    try {
      const started = performance.now();
      await quantizeModel({
        model: model.dir,
        calibration: model.calibration,
        out,
        calibrationSource: model.calibrationSource,
      });
      const quantizeSeconds = (performance.now() - started) / 1000;
      ctx.log(`${model.name}: quantized in ${quantizeSeconds.toFixed(1)} s`);
      const comparison = model.compare ? await compareTop1(ctx, model.dir, out, fashion, threads) : null;
      const fp32: InferResult[] = [];
      const int8: InferResult[] = [];
      for (let round = 0; round < cfg.rounds; round++) {
        fp32.push(await infer(ctx, model.dir, threads));
        int8.push(await infer(ctx, out, threads));
      }
      const best = (rs: InferResult[]) =>
        rs.reduce((a, b) => (b.imagesPerSecond > a.imagesPerSecond ? b : a));
      const [f, q] = [best(fp32), best(int8)];
      rows.push({
        model: model.name,
        batchSize: CLASSIFY.batchSize,
        threads,
        fp32ImagesPerSecond: f.imagesPerSecond,
        int8ImagesPerSecond: q.imagesPerSecond,
        speedup: q.imagesPerSecond / f.imagesPerSecond,
        fp32CpuMsPerImage: f.cpuSecondsPerImage * 1000,
        int8CpuMsPerImage: q.cpuSecondsPerImage * 1000,
        calibrationImages: model.calibration.length,
        calibrationSource: model.calibrationSource,
        quantizeSeconds,
        comparison,
      });
      ctx.log(
        `${model.name}: FP32 ${f.imagesPerSecond.toFixed(1)}, INT8 ${q.imagesPerSecond.toFixed(1)} images/s` +
          (comparison ? `, top-1 agreement ${(comparison.agreement * 100).toFixed(2)} %` : ''),
      );
    } catch (error) {
      ctx.log(`${model.name} failed: ${errorMessage(error)}`);
      rows.push({
        model: model.name,
        batchSize: CLASSIFY.batchSize,
        threads,
        fp32ImagesPerSecond: 0,
        int8ImagesPerSecond: 0,
        speedup: 0,
        fp32CpuMsPerImage: 0,
        int8CpuMsPerImage: 0,
        calibrationImages: model.calibration.length,
        calibrationSource: model.calibrationSource,
        quantizeSeconds: 0,
        comparison: null,
        error: errorMessage(error),
      });
    }
  }
  const bf16 = await bf16Probe(DEFAULT_MODEL_DIR, join(DIR, 'bf16'));
  ctx.log(`bf16: ${bf16.outcome}`);
  return { rows, bf16, targets: INT8_TARGETS };
}

function infer(ctx: Context, modelDir: string, threads: number): Promise<InferResult> {
  const cfg = ctx.config.int8;
  const args: InferArgs = {
    modelDir,
    batchSize: CLASSIFY.batchSize,
    threads,
    seconds: cfg.seconds,
    minRuns: cfg.minRuns,
    warmupRuns: 2,
  };
  // Its own limit, not the run's budget (as scaling): the last section must not be skipped
  // because the sections before it ran long on a busy 2-core machine.
  return runNodeWorker<InferResult>('infer', args, { timeoutMs: (cfg.seconds + 120) * 1000 });
}

/** Top-1 of both models over the evaluation images, through the labeler's preprocessing. */
async function compareTop1(
  ctx: Context,
  fp32Dir: string,
  int8Dir: string,
  fashion: boolean,
  threads: number,
): Promise<NonNullable<Int8Row['comparison']>> {
  const cfg = ctx.config.int8;
  const bundle = await loadModelBundle(fp32Dir);
  const { width, height } = bundle.manifest.input;
  const perImage = 3 * width * height;
  let encoded: Array<() => Promise<Uint8Array>>;
  let truth: string[];
  let source: string;
  if (fashion) {
    const images = await readImages('t10k');
    const labels = await readLabels('t10k');
    const count = Math.min(cfg.evaluationImages, images.count);
    encoded = Array.from({ length: count }, (_, i) => () => png(images, i));
    truth = Array.from(labels.subarray(0, count), (l) => bundle.labels[l] as string);
    source = count === images.count ? 'the Fashion-MNIST test split' : `the first ${count} test-split images`;
  } else {
    const samples = join(DEFAULT_MODEL_DIR, 'samples');
    const files = (await readdir(samples)).filter((f) => f.endsWith('.png')).sort();
    encoded = files.map((f) => () => readFile(join(samples, f)));
    const expected = await readExpectedLabels(join(DEFAULT_MODEL_DIR, 'samples.csv'));
    truth = files.map((f) => expected.get(f) ?? '');
    source = 'the bundled samples';
  }
  const inputs = new Float32Array(encoded.length * perImage);
  for (const [i, read] of encoded.entries()) {
    await preprocessInto(await read(), bundle.manifest.input, DEFAULT_IMAGE_LIMITS, inputs, i * perImage);
  }
  const fp32 = await top1(join(fp32Dir, bundle.manifest.file), inputs, bundle.manifest, threads);
  const int8 = await top1(join(int8Dir, 'model.onnx'), inputs, bundle.manifest, threads);
  let agree = 0;
  let fp32Right = 0;
  let int8Right = 0;
  for (let i = 0; i < encoded.length; i++) {
    if (fp32[i] === int8[i]) agree++;
    if (bundle.labels[fp32[i] as number] === truth[i]) fp32Right++;
    if (bundle.labels[int8[i] as number] === truth[i]) int8Right++;
  }
  const n = encoded.length;
  return { images: n, source, agreement: agree / n, fp32Top1: fp32Right / n, int8Top1: int8Right / n };
}

async function top1(
  modelPath: string,
  inputs: Float32Array,
  manifest: { input: InputSpec; output: { name: string } },
  threads: number,
): Promise<Uint16Array> {
  if (!existsSync(modelPath)) throw new Error(`${modelPath} is missing`);
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: threads,
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
  const { width, height } = manifest.input;
  const perImage = 3 * width * height;
  const count = inputs.length / perImage;
  const classes: number[] = [];
  try {
    for (let start = 0; start < count; start += 64) {
      const n = Math.min(64, count - start);
      const x = new ort.Tensor(
        'float32',
        inputs.subarray(start * perImage, (start + n) * perImage),
        inputDims(manifest.input, n),
      );
      const y = (await session.run({ [manifest.input.name]: x }))[manifest.output.name];
      const scores = y?.data as Float32Array;
      const k = scores.length / n;
      for (let j = 0; j < n; j++) {
        let best = 0;
        for (let c = 1; c < k; c++)
          if ((scores[j * k + c] as number) > (scores[j * k + best] as number)) best = c;
        classes.push(best);
      }
    }
  } finally {
    await session.release();
  }
  return Uint16Array.from(classes);
}
