// The labeler's own pipeline (createImageLabeler + labelAll: decode of the next batch
// overlaps inference of this one) over a set of files, with no queue or database around it.
import { readFile } from 'node:fs/promises';
import { createImageLabeler } from '../../shared/labeling/create-labeler.ts';
import { workerMain } from '../lib/child.ts';
import { cpuSecondsSince } from '../lib/stats.ts';

export interface PipelineArgs {
  readonly modelDir: string;
  readonly files: readonly string[];
  /** Omitted: the labeler's defaults (LABELING.batchSize, all cores). */
  readonly batchSize?: number;
  readonly threads?: number;
  readonly concurrency?: number;
  /** 'memory' reads every file before timing; 'disk' reads each file when it is labelled. */
  readonly source: 'memory' | 'disk';
  readonly seconds: number;
  readonly minImages: number;
}

export interface PipelineResult {
  readonly batchSize: number;
  readonly concurrency: number;
  readonly images: number;
  readonly failed: number;
  readonly seconds: number;
  readonly imagesPerSecond: number;
  readonly cpuSecondsPerImage: number;
  /** Per image, summed over stages; inference time is the batch's run divided by its images. */
  readonly msPerImage: { read: number; preprocess: number; infer: number };
  readonly peakRssMb: number;
}

await workerMain<PipelineArgs, PipelineResult>(async (args) => {
  const labeler = await createImageLabeler({
    modelDir: args.modelDir,
    ...(args.batchSize === undefined ? {} : { batchSize: args.batchSize }),
    ...(args.threads === undefined ? {} : { intraOpThreads: args.threads }),
    ...(args.concurrency === undefined ? {} : { concurrency: args.concurrency }),
  });
  const { batchSize, concurrency } = labeler.settings;
  const cache = args.source === 'memory' ? await Promise.all(args.files.map((f) => readFile(f))) : [];
  const read = async (index: number): Promise<Uint8Array> =>
    args.source === 'memory'
      ? (cache[index % cache.length] as Buffer)
      : readFile(args.files[index % args.files.length] as string);

  // Warm-up batch (first-run allocations), not timed.
  await labeler.labelBatch(
    Array.from({ length: batchSize }, (_, i) => i),
    read,
  );

  const started = performance.now();
  const deadline = started + args.seconds * 1000;
  let issued = 0;
  function* indexes(): Generator<number> {
    while (performance.now() < deadline || issued < args.minImages) yield issued++;
  }
  let images = 0;
  let failed = 0;
  let readMs = 0;
  let preprocessMs = 0;
  let inferMs = 0;
  const cpu = process.cpuUsage();
  for await (const batch of labeler.labelAll(indexes(), read)) {
    for (const { outcome } of batch) {
      images++;
      if (outcome.status !== 'ok') failed++;
      readMs += outcome.timings.readMs;
      preprocessMs += outcome.timings.preprocessMs;
      inferMs += outcome.timings.inferMs / Math.max(1, outcome.timings.batchSize);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const cpuSeconds = cpuSecondsSince(cpu);
  return {
    batchSize,
    concurrency,
    images,
    failed,
    seconds,
    imagesPerSecond: images / seconds,
    cpuSecondsPerImage: cpuSeconds / images,
    msPerImage: { read: readMs / images, preprocess: preprocessMs / images, infer: inferMs / images },
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  };
});
