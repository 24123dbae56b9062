// One inference setting (batch size x intra-op threads) in a fresh process, so RSS is its own.
import { Classifier } from '../../shared/model/classifier.ts';
import { loadModelBundle } from '../../shared/model/manifest.ts';
import { workerMain } from '../lib/child.ts';
import { prng } from '../lib/prng.ts';
import { cpuSecondsSince, percentile } from '../lib/stats.ts';

export interface InferArgs {
  readonly modelDir: string;
  readonly batchSize: number;
  readonly threads: number;
  readonly seconds: number;
  readonly minRuns: number;
  readonly warmupRuns: number;
}

export interface InferResult {
  readonly batchSize: number;
  readonly threads: number;
  readonly runs: number;
  readonly images: number;
  readonly seconds: number;
  readonly imagesPerSecond: number;
  readonly cpuSecondsPerImage: number;
  readonly batchLatencyMs: { p50: number; p90: number };
  readonly loadMs: number;
  readonly rssAfterLoadMb: number;
  readonly peakRssMb: number;
}

const mb = (bytes: number) => bytes / 1024 / 1024;

await workerMain<InferArgs, InferResult>(async (args) => {
  const loadStarted = performance.now();
  const bundle = await loadModelBundle(args.modelDir);
  const classifier = await Classifier.create(bundle, { intraOpThreads: args.threads });
  const loadMs = performance.now() - loadStarted;
  const rssAfterLoadMb = mb(process.memoryUsage().rss);

  // Values like normalised pixels: fixed pseudo-random data, the same in every setting.
  const random = prng(42);
  const input = new Float32Array(args.batchSize * classifier.imageLength);
  for (let i = 0; i < input.length; i++) input[i] = random() * 4 - 2;

  // classify takes each batch's buffer (transfer); refilling a recycled one stays outside the timing.
  const batch = () => {
    const b = classifier.inputBatch(args.batchSize);
    b.set(input);
    return b;
  };
  for (let i = 0; i < args.warmupRuns; i++) await classifier.classify(batch(), args.batchSize, 5);

  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < args.seconds * 1000 || latencies.length < args.minRuns) {
    const next = batch();
    const t = performance.now();
    await classifier.classify(next, args.batchSize, 5);
    const now = performance.now();
    latencies.push(now - t);
    elapsed = now - started;
  }
  const cpuSeconds = cpuSecondsSince(cpu);
  const images = latencies.length * args.batchSize;
  return {
    batchSize: args.batchSize,
    threads: args.threads,
    runs: latencies.length,
    images,
    seconds: elapsed / 1000,
    imagesPerSecond: images / (elapsed / 1000),
    cpuSecondsPerImage: cpuSeconds / images,
    batchLatencyMs: { p50: percentile(latencies, 50), p90: percentile(latencies, 90) },
    loadMs,
    rssAfterLoadMb,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  };
});
