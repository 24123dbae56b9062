// Decode + orient + resize + crop + tensor (preprocessInto) over one image set, from memory.
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { DEFAULT_IMAGE_LIMITS, preprocessInto } from '../../shared/image/preprocess.ts';
import { loadModelBundle } from '../../shared/model/manifest.ts';
import { workerMain } from '../lib/child.ts';
import { cpuSecondsSince, percentile } from '../lib/stats.ts';

export interface PreprocessArgs {
  readonly modelDir: string;
  readonly files: readonly string[];
  /** Images decoded at once (the labeler's `concurrency`). */
  readonly concurrency: number;
  /** libvips threads per image; null leaves sharp's default. */
  readonly sharpConcurrency: number | null;
  readonly seconds: number;
  readonly minImages: number;
}

export interface PreprocessResult {
  readonly concurrency: number;
  readonly sharpConcurrency: number;
  readonly images: number;
  readonly seconds: number;
  readonly imagesPerSecond: number;
  readonly imagesPerCpuSecond: number;
  readonly msPerImage: { p50: number; p90: number };
  readonly megapixels: number;
}

await workerMain<PreprocessArgs, PreprocessResult>(async (args) => {
  if (args.sharpConcurrency !== null) sharp.concurrency(args.sharpConcurrency);
  const { manifest } = await loadModelBundle(args.modelDir);
  const spec = manifest.input;
  const inputs = await Promise.all(args.files.map((f) => readFile(f)));
  const imageLength = 3 * spec.width * spec.height;
  const slots = Array.from({ length: args.concurrency }, () => new Float32Array(imageLength));
  let megapixels = 0;
  for (const bytes of inputs.slice(0, 2)) {
    const info = await preprocessInto(bytes, spec, DEFAULT_IMAGE_LIMITS, slots[0] as Float32Array, 0);
    megapixels = (info.width * info.height) / 1e6;
  }

  const latencies: number[] = [];
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const deadline = started + args.seconds * 1000;
  const worker = async (slot: Float32Array) => {
    while (performance.now() < deadline || next < args.minImages) {
      const bytes = inputs[next++ % inputs.length] as Buffer;
      const t = performance.now();
      await preprocessInto(bytes, spec, DEFAULT_IMAGE_LIMITS, slot, 0);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(slots.map(worker));
  const seconds = (performance.now() - started) / 1000;
  const cpuSeconds = cpuSecondsSince(cpu);
  return {
    concurrency: args.concurrency,
    sharpConcurrency: sharp.concurrency(),
    images: latencies.length,
    seconds,
    imagesPerSecond: latencies.length / seconds,
    imagesPerCpuSecond: latencies.length / cpuSeconds,
    msPerImage: { p50: percentile(latencies, 50), p90: percentile(latencies, 90) },
    megapixels,
  };
});
