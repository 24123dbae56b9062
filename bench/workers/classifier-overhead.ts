// The Classifier against a raw `session.run` on the main thread: same model, same session
// options and threads, same input, one batch size, in one process. The two paths take turns
// run by run, so a neighbour loading the machine slows both alike; the ratio is what counts.
import * as ort from 'onnxruntime-node';
import { Classifier, sessionOptions } from '../../shared/model/classifier.ts';
import { loadModelBundle } from '../../shared/model/manifest.ts';
import { workerMain } from '../lib/child.ts';
import { prng } from '../lib/prng.ts';
import type { OverheadRow } from '../lib/types.ts';

export interface OverheadArgs {
  readonly modelDir: string;
  readonly batchSize: number;
  readonly threads: number;
  /** Timed seconds per path (the two paths alternate). */
  readonly seconds: number;
  readonly minRuns: number;
  readonly warmupRuns: number;
}

/** One row of the report's table, before the section names the model. */
export type OverheadResult = Omit<OverheadRow, 'model' | 'error'>;

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

await workerMain<OverheadArgs, OverheadResult>(async (args) => {
  const bundle = await loadModelBundle(args.modelDir);
  const { input, output } = bundle.manifest;
  const options = { intraOpThreads: args.threads };
  const session = await ort.InferenceSession.create(bundle.modelBytes, {
    ...sessionOptions(options),
    executionProviders: ['cpu'],
  });
  const classifier = await Classifier.create(bundle, options);

  const random = prng(42);
  const data = new Float32Array(args.batchSize * classifier.imageLength);
  for (let i = 0; i < data.length; i++) data[i] = random() * 4 - 2;
  const dims =
    input.layout === 'NCHW'
      ? [args.batchSize, 3, input.height, input.width]
      : [args.batchSize, input.height, input.width, 3];
  const tensor = new ort.Tensor('float32', data, dims);

  const raw = async () => {
    const t = performance.now();
    const out = await session.run({ [input.name]: tensor }, [output.name]);
    if (!(out[output.name]?.data instanceof Float32Array)) throw new Error('raw output is not float32');
    return performance.now() - t;
  };
  const wrapped = async () => {
    // classify takes the batch's buffer; refilling a recycled one is the caller's work (the
    // labeler decodes into it), so it stays outside the timing.
    const batch = classifier.inputBatch(args.batchSize);
    batch.set(data);
    const t = performance.now();
    await classifier.classify(batch, args.batchSize, 5);
    return performance.now() - t;
  };

  for (let i = 0; i < args.warmupRuns; i++) {
    await raw();
    await wrapped();
  }
  const rawMs: number[] = [];
  const classifierMs: number[] = [];
  const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
  while (rawMs.length < args.minRuns || Math.min(sum(rawMs), sum(classifierMs)) < args.seconds * 1000) {
    // Alternate which goes first, so neither always runs right after the other's warm caches.
    if (rawMs.length % 2 === 0) {
      rawMs.push(await raw());
      classifierMs.push(await wrapped());
    } else {
      classifierMs.push(await wrapped());
      rawMs.push(await raw());
    }
  }
  await classifier.release();
  await session.release();
  const rawImagesPerSecond = (rawMs.length * args.batchSize) / (sum(rawMs) / 1000);
  const classifierImagesPerSecond = (classifierMs.length * args.batchSize) / (sum(classifierMs) / 1000);
  return {
    batchSize: args.batchSize,
    threads: args.threads,
    runs: rawMs.length,
    rawImagesPerSecond,
    classifierImagesPerSecond,
    ratio: classifierImagesPerSecond / rawImagesPerSecond,
    rawMsP50: median(rawMs),
    classifierMsP50: median(classifierMs),
  };
});
