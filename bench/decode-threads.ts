// Decode throughput against the size of libuv's thread pool, where sharp runs every
// decode. libuv reads UV_THREADPOOL_SIZE once, when the pool first starts (4 threads if
// unset), and in an ES module that is before the entry's first line runs, so only the
// environment can set it: the stack sets it per function and per GPU instance type.
// Kept out of `npm run bench`'s default run; writes bench/DECODE-THREADS.md.
//
//   node --import tsx bench/decode-threads.ts [--seconds 8]
process.env.ORT_DISABLE_TELEMETRY = '1';

import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MODEL_DIR } from '../shared/paths.ts';
import { BENCH_DIR, runNodeWorker } from './lib/child.ts';
import { ensureImages, IMAGE_KINDS } from './lib/images.ts';
import type { PreprocessArgs, PreprocessResult } from './workers/preprocess.ts';

const secondsArg = process.argv.indexOf('--seconds');
const seconds = secondsArg > 0 ? Number(process.argv[secondsArg + 1]) : 8;
const cores = availableParallelism();
const pools = [...new Set([1, 2, 4, cores])].sort((a, b) => a - b);
// The same number of images in flight for every pool size, so only the pool varies.
const inFlight = Math.max(4, cores);

// The B0 input spec (224 px, ImageNet normalisation) on the bundled model's folder: the
// preprocess worker reads only the manifest.
const modelDir = await mkdtemp(join(tmpdir(), 'labeler-decode-'));
await cp(DEFAULT_MODEL_DIR, modelDir, { recursive: true });
const manifestPath = join(modelDir, 'manifest.json');
const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
manifest.input = {
  ...manifest.input,
  width: 224,
  height: 224,
  resize: { policy: 'shorter-side-then-center-crop', cropFraction: 0.875, kernel: 'cubic' },
};
await writeFile(manifestPath, JSON.stringify(manifest));

const files = await ensureImages('medium', 24, (m) => process.stderr.write(`${m}\n`));
const rows: string[] = [];
let base = 0;
try {
  for (const pool of pools) {
    const args: PreprocessArgs = {
      modelDir,
      files,
      concurrency: inFlight,
      sharpConcurrency: 1,
      seconds,
      minImages: 4,
    };
    const r = await runNodeWorker<PreprocessResult>('preprocess', args, {
      timeoutMs: (seconds + 120) * 1000,
      env: { UV_THREADPOOL_SIZE: String(pool) },
    });
    if (pool === 1) base = r.imagesPerSecond;
    const load = loadavg()[0]?.toFixed(1) ?? '?';
    const line = `| ${pool}${pool === cores ? ' (all cores)' : ''} | ${inFlight} | ${r.imagesPerSecond.toFixed(1)} | ${(r.imagesPerSecond / base).toFixed(2)}x | ${r.imagesPerCpuSecond.toFixed(1)} | ${r.msPerImage.p50.toFixed(1)} | ${load} |`;
    process.stderr.write(`${line}\n`);
    rows.push(line);
  }
} finally {
  await rm(modelDir, { recursive: true, force: true });
}

const report = `# Decode throughput by libuv pool size

\`node --import tsx bench/decode-threads.ts --seconds ${seconds}\` on ${cores} cores (${cpus()[0]?.model ?? 'unknown CPU'}).
Each row is a fresh process started with \`UV_THREADPOOL_SIZE\` = the pool size; ${inFlight} images in
flight, one libvips thread per image, ${IMAGE_KINDS.medium.label} JPEGs to a 224 px B0 tensor
(\`preprocessInto\`, as the workers run it).

| UV_THREADPOOL_SIZE | images in flight | images/s | vs pool 1 | images per CPU-second | p50 ms/image | load average (1 min) |
| ------------------ | ---------------- | -------- | --------- | --------------------- | ------------ | -------------------- |
${rows.join('\n')}

Images/s is bounded by min(pool, cores) decoding threads: the pool caps how many decodes run
at once. On a machine shared with other processes (load average above the cores), a pool
larger than the cores can still gain, because more runnable threads win more of the
contended CPU; images per CPU-second shows the work per image stays the same. With libuv's
default of 4, a 16-vCPU GPU instance or a 6-vCPU Lambda would decode on 4 threads at most,
so infra sets \`UV_THREADPOOL_SIZE\` to the vCPUs: Lambda from its memory size (\`lambdaVcpus\`
in shared/settings.ts), the GPU task from its instance type (\`GPU_INSTANCE_SIZES\`).
`;
await writeFile(join(BENCH_DIR, 'DECODE-THREADS.md'), report);
process.stderr.write(`wrote bench/DECODE-THREADS.md\n`);
