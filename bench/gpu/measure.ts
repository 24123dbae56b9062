// The GPU run's measurements (issue 14's table) with the project's own Classifier and
// labelAll, each in a fresh process so each gets its own libuv pool size. The kit runs it
// bundled (bench/gpu/pack.ts -> measure.mjs) with the kit's Node.js; here it runs under
// tsx, and `--provider cpu` is the dry run the tests use.
//
//   node --import tsx bench/gpu/measure.ts --provider cpu --model <dir> --out <dir> [--seconds 8]
//
// With a non-CPU provider every phase refuses to run on anything else: the Classifier and
// the labeler are created with requireProvider, and the provider in use is checked.
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_IMAGE_LIMITS, preprocessInto } from '../../shared/image/preprocess.ts';
import { createImageLabeler } from '../../shared/labeling/create-labeler.ts';
import { Classifier } from '../../shared/model/classifier.ts';
import { loadModelBundle, type Manifest } from '../../shared/model/manifest.ts';
import { generateJpeg, IMAGE_KINDS, type ImageKind } from '../lib/images.ts';

/** One measurement, run in its own process. */
export type Phase =
  | { readonly kind: 'check' }
  | { readonly kind: 'raw'; readonly batch: number }
  | { readonly kind: 'classifier'; readonly batch: number }
  | { readonly kind: 'decode'; readonly pool: number; readonly inFlight: number }
  | {
      readonly kind: 'labelAll';
      readonly provider: string;
      readonly pool: number;
      readonly batch: number;
      readonly inFlight: number;
    };

interface PhaseContext {
  readonly provider: string;
  readonly modelDir: string;
  readonly imagesDir: string;
  readonly seconds: number;
}

export interface PhaseResult {
  readonly phase: Phase;
  readonly images: number;
  readonly seconds: number;
  readonly imagesPerSecond: number;
  /** The provider the session reported in use (Classifier phases). */
  readonly providerInUse?: string;
  readonly gpuUtilization?: { readonly mean: number; readonly max: number; readonly samples: number };
  readonly note?: string;
}

export interface MachineInfo {
  readonly gpu: string | null;
  readonly driver: string | null;
  readonly gpuMemoryMiB: number | null;
  readonly cores: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly onnxruntimeNode: string | null;
}

export interface GpuRunResults {
  readonly date: string;
  readonly provider: string;
  readonly machine: MachineInfo;
  readonly model: { readonly id: string; readonly version: string; readonly input: string };
  readonly images: { readonly count: number; readonly description: string };
  readonly secondsPerMeasurement: number;
  readonly processListed: boolean | null;
  readonly rows: readonly PhaseResult[];
}

const MIN_RUNS = 3;
const WARMUP_RUNS = 3;

// ---------------------------------------------------------------------------------------
// Child side: one phase.

async function loadImages(dir: string): Promise<Buffer[]> {
  const files = (await readdir(dir)).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort();
  if (files.length === 0) throw new Error(`no images in ${dir}`);
  return Promise.all(files.map((f) => readFile(join(dir, f))));
}

function randomInput(length: number): Float32Array {
  // Fixed pseudo-random values in the range of normalised pixels; the same in every phase.
  const out = new Float32Array(length);
  let state = 42;
  for (let i = 0; i < out.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = (state / 4294967296) * 4 - 2;
  }
  return out;
}

function inputDims(manifest: Manifest, batch: number): number[] {
  const { input } = manifest;
  return input.layout === 'NCHW'
    ? [batch, 3, input.height, input.width]
    : [batch, input.height, input.width, 3];
}

/** Samples `nvidia-smi` GPU utilisation while a phase is timed; a no-op without nvidia-smi. */
class GpuSampler {
  readonly #samples: number[] = [];
  readonly #child: ReturnType<typeof spawn> | undefined;

  constructor(enabled: boolean) {
    if (!enabled || !hasNvidiaSmi()) return;
    this.#child = spawn(
      'nvidia-smi',
      ['--query-gpu=utilization.gpu', '--format=csv,noheader,nounits', '-lms', '250'],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    this.#child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      for (const line of text.split('\n')) {
        const value = Number(line.trim().split(',')[0]);
        if (line.trim() !== '' && Number.isFinite(value)) this.#samples.push(value);
      }
    });
    this.#child.on('error', () => undefined);
  }

  stop(): PhaseResult['gpuUtilization'] {
    this.#child?.kill();
    if (this.#samples.length === 0) return undefined;
    const sum = this.#samples.reduce((a, b) => a + b, 0);
    return {
      mean: sum / this.#samples.length,
      max: Math.max(...this.#samples),
      samples: this.#samples.length,
    };
  }
}

let nvidiaSmi: boolean | undefined;
function hasNvidiaSmi(): boolean {
  nvidiaSmi ??= spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8' }).status === 0;
  return nvidiaSmi;
}

function nvidiaQuery(args: string[]): string | null {
  if (!hasNvidiaSmi()) return null;
  const out = spawnSync('nvidia-smi', args, { encoding: 'utf8' });
  return out.status === 0 ? out.stdout.trim() : null;
}

/** Runs `step` until `seconds` have passed and at least MIN_RUNS runs; returns images/s. */
async function timed(
  seconds: number,
  imagesPerStep: number,
  gpu: boolean,
  step: () => Promise<void>,
): Promise<Pick<PhaseResult, 'images' | 'seconds' | 'imagesPerSecond' | 'gpuUtilization'>> {
  const sampler = new GpuSampler(gpu);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let runs = 0;
  while (performance.now() < deadline || runs < MIN_RUNS) {
    await step();
    runs++;
  }
  const elapsed = (performance.now() - started) / 1000;
  const gpuUtilization = sampler.stop();
  const images = runs * imagesPerStep;
  return {
    images,
    seconds: elapsed,
    imagesPerSecond: images / elapsed,
    ...(gpuUtilization ? { gpuUtilization } : {}),
  };
}

function requireInUse(wanted: string, inUse: string): void {
  if (inUse !== wanted) {
    throw new Error(`execution provider in use is ${inUse}, not ${wanted}: refusing to measure`);
  }
}

async function runPhase(phase: Phase, ctx: PhaseContext): Promise<PhaseResult> {
  const gpu = ctx.provider !== 'cpu';
  const classifierOptions = (provider: string) => ({
    executionProviders: [provider],
    ...(provider === 'cpu' ? {} : { requireProvider: true }),
  });
  switch (phase.kind) {
    case 'check': {
      const classifier = await Classifier.create(
        await loadModelBundle(ctx.modelDir),
        classifierOptions(ctx.provider),
      );
      try {
        requireInUse(ctx.provider, classifier.executionProvider);
        // classify takes the buffer (transferred to the inference thread): one per run.
        const input = classifier.inputBatch(1);
        input.set(randomInput(classifier.imageLength));
        await classifier.classify(input, 1, 5);
        // Listed by nvidia-smi while the session is open: the GPU really holds it.
        const apps = nvidiaQuery(['--query-compute-apps=pid', '--format=csv,noheader']);
        const listed = apps === null ? null : apps.split('\n').some((l) => Number(l.trim()) === process.pid);
        return {
          phase,
          images: 1,
          seconds: 0,
          imagesPerSecond: 0,
          providerInUse: classifier.executionProvider,
          note:
            listed === null
              ? 'nvidia-smi not available'
              : listed
                ? 'listed by nvidia-smi'
                : 'not listed by nvidia-smi',
        };
      } finally {
        await classifier.release();
      }
    }
    case 'raw': {
      // onnxruntime-node as a user would call it: one session, session.run on the main thread.
      const ort = await import('onnxruntime-node');
      const bundle = await loadModelBundle(ctx.modelDir);
      const session = await ort.InferenceSession.create(bundle.modelBytes, {
        executionProviders: [ctx.provider],
        graphOptimizationLevel: 'all',
      });
      try {
        const { input, output } = bundle.manifest;
        const dims = inputDims(bundle.manifest, phase.batch);
        const data = randomInput(dims.reduce((a, b) => a * b, 1));
        const run = async () => {
          await session.run({ [input.name]: new ort.Tensor('float32', data, dims) }, [output.name]);
        };
        for (let i = 0; i < WARMUP_RUNS; i++) await run();
        return { phase, ...(await timed(ctx.seconds, phase.batch, gpu, run)) };
      } finally {
        await session.release();
      }
    }
    case 'classifier': {
      const classifier = await Classifier.create(
        await loadModelBundle(ctx.modelDir),
        classifierOptions(ctx.provider),
      );
      try {
        requireInUse(ctx.provider, classifier.executionProvider);
        const data = randomInput(phase.batch * classifier.imageLength);
        // As labelAll does: a recycled buffer from inputBatch, filled, then handed over
        // (classify transfers it to the inference thread). The fill is in the time, as
        // writing pixels is in labelAll's; bench/workers/classifier-overhead.ts does the same.
        const run = async () => {
          const input = classifier.inputBatch(phase.batch);
          input.set(data);
          await classifier.classify(input, phase.batch, 5);
        };
        for (let i = 0; i < WARMUP_RUNS; i++) await run();
        return {
          phase,
          providerInUse: classifier.executionProvider,
          ...(await timed(ctx.seconds, phase.batch, gpu, run)),
        };
      } finally {
        await classifier.release();
      }
    }
    case 'decode': {
      const { manifest } = await loadModelBundle(ctx.modelDir);
      const images = await loadImages(ctx.imagesDir);
      const length = 3 * manifest.input.width * manifest.input.height;
      const slots = Array.from({ length: phase.inFlight }, () => new Float32Array(length));
      for (const bytes of images.slice(0, 2)) {
        await preprocessInto(bytes, manifest.input, DEFAULT_IMAGE_LIMITS, slots[0] as Float32Array, 0);
      }
      let next = 0;
      // One step = one round of `inFlight` decodes, each slot decoding its own image.
      const step = async () => {
        await Promise.all(
          slots.map((slot) =>
            preprocessInto(
              images[next++ % images.length] as Buffer,
              manifest.input,
              DEFAULT_IMAGE_LIMITS,
              slot,
              0,
            ),
          ),
        );
      };
      return { phase, ...(await timed(ctx.seconds, phase.inFlight, false, step)) };
    }
    case 'labelAll': {
      const labeler = await createImageLabeler({
        modelDir: ctx.modelDir,
        executionProviders: [phase.provider],
        ...(phase.provider === 'cpu' ? {} : { requireProvider: true }),
        batchSize: phase.batch,
        concurrency: phase.inFlight,
      });
      try {
        requireInUse(phase.provider, labeler.classifier.executionProvider);
        const images = await loadImages(ctx.imagesDir);
        const read = async (index: number): Promise<Uint8Array> => images[index % images.length] as Buffer;
        await labeler.labelBatch(
          Array.from({ length: phase.batch }, (_, i) => i),
          read,
        );
        const sampler = new GpuSampler(phase.provider !== 'cpu');
        const started = performance.now();
        const deadline = started + ctx.seconds * 1000;
        let issued = 0;
        const minImages = MIN_RUNS * phase.batch;
        function* indexes(): Generator<number> {
          while (performance.now() < deadline || issued < minImages) yield issued++;
        }
        let done = 0;
        let failed = 0;
        for await (const batch of labeler.labelAll(indexes(), read)) {
          for (const { outcome } of batch) {
            done++;
            if (outcome.status !== 'ok') failed++;
          }
        }
        const seconds = (performance.now() - started) / 1000;
        const gpuUtilization = sampler.stop();
        if (failed > 0) throw new Error(`${failed} of ${done} images failed to label`);
        return {
          phase,
          images: done,
          seconds,
          imagesPerSecond: done / seconds,
          providerInUse: labeler.classifier.executionProvider,
          ...(gpuUtilization ? { gpuUtilization } : {}),
        };
      } finally {
        await labeler.classifier.release();
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Parent side: the plan, the child processes, the report.

export interface MeasureOptions {
  readonly provider: string;
  readonly modelDir: string;
  readonly outDir: string;
  readonly seconds: number;
  readonly imageCount: number;
  readonly imageKind: ImageKind;
  /** Use these JPEGs instead of generating them. */
  readonly imagesDir?: string;
  readonly rawBatches: readonly number[];
  readonly classifierBatches: readonly number[];
  readonly pipelineBatch: number;
  readonly cores: number;
}

/** Issue 14's table, in order: every phase the run measures. */
export function plan(
  options: Pick<MeasureOptions, 'provider' | 'rawBatches' | 'classifierBatches' | 'pipelineBatch' | 'cores'>,
): Phase[] {
  const pools = [...new Set([4, options.cores])].sort((a, b) => a - b);
  const inFlight = Math.max(4, options.cores);
  const phases: Phase[] = [{ kind: 'check' }];
  for (const batch of options.rawBatches) phases.push({ kind: 'raw', batch });
  for (const batch of options.classifierBatches) phases.push({ kind: 'classifier', batch });
  for (const pool of pools) phases.push({ kind: 'decode', pool, inFlight });
  const providers = options.provider === 'cpu' ? ['cpu'] : [options.provider, 'cpu'];
  for (const provider of providers) {
    for (const pool of pools) {
      phases.push({ kind: 'labelAll', provider, pool, batch: options.pipelineBatch, inFlight });
    }
  }
  return phases;
}

function poolOf(phase: Phase): number | undefined {
  return phase.kind === 'decode' || phase.kind === 'labelAll' ? phase.pool : undefined;
}

/** Runs one phase in a fresh process of the same script (tsx or the bundle alike). */
function runChildPhase(phase: Phase, ctx: PhaseContext, cores: number): Promise<PhaseResult> {
  const pool = poolOf(phase) ?? cores;
  const script = process.argv[1] as string;
  return new Promise((resolvePhase, reject) => {
    const child = spawn(
      process.execPath,
      [...process.execArgv, script, '--phase', JSON.stringify(phase), '--context', JSON.stringify(ctx)],
      {
        env: { ...process.env, UV_THREADPOOL_SIZE: String(pool), ORT_DISABLE_TELEMETRY: '1' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        const reply = JSON.parse(last) as { ok: true; result: PhaseResult } | { ok: false; error: string };
        if (reply.ok) resolvePhase(reply.result);
        else reject(new Error(reply.error));
      } catch {
        reject(new Error(`phase ${JSON.stringify(phase)} exited ${code} without a result`));
      }
    });
  });
}

async function prepareImages(
  options: MeasureOptions,
): Promise<{ dir: string; count: number; description: string }> {
  if (options.imagesDir) {
    const count = (await readdir(options.imagesDir)).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).length;
    return {
      dir: resolve(options.imagesDir),
      count,
      description: `${count} images from ${options.imagesDir}`,
    };
  }
  const dir = join(options.outDir, `images-${options.imageKind}-${options.imageCount}`);
  await mkdir(dir, { recursive: true });
  const existing = new Set(await readdir(dir));
  for (let i = 0; i < options.imageCount; i++) {
    const name = `${options.imageKind}-${String(i).padStart(4, '0')}.jpg`;
    if (!existing.has(name)) await writeFile(join(dir, name), await generateJpeg(options.imageKind, i));
  }
  return {
    dir,
    count: options.imageCount,
    description: `${options.imageCount} synthetic JPEGs, ${IMAGE_KINDS[options.imageKind].label}, quality 90, made with sharp`,
  };
}

function machineInfo(ortVersion: string | null): MachineInfo {
  const gpu = nvidiaQuery(['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader,nounits']);
  const [name, driver, memory] = (gpu?.split('\n')[0] ?? '').split(',').map((s) => s.trim());
  return {
    gpu: name || null,
    driver: driver || null,
    gpuMemoryMiB: memory ? Number(memory) : null,
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    onnxruntimeNode: ortVersion,
  };
}

async function onnxruntimeVersion(): Promise<string | null> {
  try {
    const { createRequire } = await import('node:module');
    const require = createRequire(import.meta.url);
    const main = require.resolve('onnxruntime-node');
    // main is <pkg>/dist/index.js
    const pkg = JSON.parse(await readFile(join(main, '..', '..', 'package.json'), 'utf8')) as {
      version: string;
    };
    return pkg.version;
  } catch {
    return null;
  }
}

export async function measure(options: MeasureOptions, log: (m: string) => void): Promise<GpuRunResults> {
  await mkdir(options.outDir, { recursive: true });
  const bundle = await loadModelBundle(options.modelDir);
  const images = await prepareImages(options);
  const ctx: PhaseContext = {
    provider: options.provider,
    modelDir: resolve(options.modelDir),
    imagesDir: images.dir,
    seconds: options.seconds,
  };
  const rows: PhaseResult[] = [];
  let processListed: boolean | null = null;
  for (const phase of plan(options)) {
    log(`measuring ${JSON.stringify(phase)}`);
    const result = await runChildPhase(phase, ctx, options.cores);
    if (phase.kind === 'check') {
      processListed =
        result.note === 'listed by nvidia-smi'
          ? true
          : result.note === 'not listed by nvidia-smi'
            ? false
            : null;
      log(`provider in use: ${result.providerInUse} (${result.note})`);
      continue;
    }
    log(`  ${result.imagesPerSecond.toFixed(1)} images/s`);
    rows.push(result);
  }
  const { input } = bundle.manifest;
  return {
    date: new Date().toISOString(),
    provider: options.provider,
    machine: machineInfo(await onnxruntimeVersion()),
    model: {
      id: bundle.manifest.id,
      version: bundle.manifest.version,
      input: `${input.width}x${input.height} ${input.layout}`,
    },
    images: { count: images.count, description: images.description },
    secondsPerMeasurement: options.seconds,
    processListed,
    rows,
  };
}

const fmt = (n: number | undefined) => (n === undefined ? '-' : Math.round(n).toLocaleString('en-US'));

/** Issue 14's table for one run. */
export function renderMarkdown(r: GpuRunResults): string {
  const find = (pred: (p: Phase) => boolean) => r.rows.filter((row) => pred(row.phase));
  const rate = (pred: (p: Phase) => boolean) => find(pred).map((row) => row.imagesPerSecond);
  const raw = find((p) => p.kind === 'raw');
  const cls = find((p) => p.kind === 'classifier');
  const decode = find((p) => p.kind === 'decode');
  const cores = r.machine.cores;
  const pools = [...new Set([4, cores])].sort((a, b) => a - b);
  const util = (rows: readonly PhaseResult[]) => {
    const u = rows.map((row) => row.gpuUtilization).filter((g) => g !== undefined);
    return u.length === 0 ? '' : `GPU ${u.map((g) => `${Math.round(g.mean)} % (max ${g.max})`).join(' / ')}`;
  };
  const lines = [
    '| path | images/s | note |',
    '|---|---|---|',
    `| raw \`session.run\`, batch ${raw.map((x) => (x.phase as { batch: number }).batch).join(' / ')} | ${raw.map((x) => fmt(x.imagesPerSecond)).join(' / ')} | ${util(raw)} |`,
    `| the project's \`Classifier\`, batch ${cls.map((x) => (x.phase as { batch: number }).batch).join(' / ')} | ${cls.map((x) => fmt(x.imagesPerSecond)).join(' / ')} | ${util(cls)} |`,
  ];
  for (const row of decode) {
    const phase = row.phase as Extract<Phase, { kind: 'decode' }>;
    lines.push(
      `| decode only (\`preprocessInto\`), ${phase.inFlight} in flight, \`UV_THREADPOOL_SIZE=${phase.pool}\`${phase.pool === cores ? ' (all cores)' : ''} | ${fmt(row.imagesPerSecond)} | |`,
    );
  }
  const providers = [
    ...new Set(find((p) => p.kind === 'labelAll').map((x) => (x.phase as { provider: string }).provider)),
  ];
  for (const provider of providers) {
    const rows = find((p) => p.kind === 'labelAll' && p.provider === provider);
    const first = rows[0]?.phase as Extract<Phase, { kind: 'labelAll' }> | undefined;
    if (!first) continue;
    const where =
      provider === 'cpu'
        ? r.provider === 'cpu'
          ? 'on the CPU'
          : 'CPU-only on the same host'
        : `on ${provider.toUpperCase()}`;
    lines.push(
      `| \`labelAll\` end to end ${where}, batch ${first.batch}, ${first.inFlight} in flight: pool ${pools.join(' → ')} | ${rows.map((x) => fmt(x.imagesPerSecond)).join(' → ')} | ${util(rows)} |`,
    );
  }
  const ratios: string[] = [];
  for (const c of cls) {
    const batch = (c.phase as { batch: number }).batch;
    const match = raw.find((x) => (x.phase as { batch: number }).batch === batch);
    if (match)
      ratios.push(
        `Classifier / raw at batch ${batch}: ${((100 * c.imagesPerSecond) / match.imagesPerSecond).toFixed(0)} %`,
      );
  }
  const decodeAll = rate((p) => p.kind === 'decode' && p.pool === cores)[0];
  const e2eAll = rate((p) => p.kind === 'labelAll' && p.provider === r.provider && p.pool === cores)[0];
  if (decodeAll && e2eAll)
    ratios.push(`end to end / decode only (all cores): ${((100 * e2eAll) / decodeAll).toFixed(0)} %`);
  const m = r.machine;
  return [
    `Machine: ${m.gpu ?? 'no GPU'}${m.driver ? ` (driver ${m.driver}, ${m.gpuMemoryMiB} MiB)` : ''}, ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB; Node.js ${m.node}, onnxruntime-node ${m.onnxruntimeNode ?? '?'}. ` +
      `Provider ${r.provider}${r.processListed === null ? '' : r.processListed ? ', the process listed by `nvidia-smi`' : ', the process NOT listed by `nvidia-smi`'}. ` +
      `Model ${r.model.id}@${r.model.version} (${r.model.input}); ${r.images.description}; ${r.secondsPerMeasurement} s per measurement, each in a fresh process; ${r.date}.`,
    '',
    ...lines,
    '',
    ...ratios.map((x) => `- ${x}`),
    '',
  ].join('\n');
}

function numberList(text: string, name: string): number[] {
  const list = text.split(',').map(Number);
  if (list.some((n) => !Number.isInteger(n) || n <= 0))
    throw new Error(`${name} must be positive integers, got ${text}`);
  return list;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      phase: { type: 'string' },
      context: { type: 'string' },
      provider: { type: 'string', default: 'cuda' },
      model: { type: 'string' },
      out: { type: 'string', default: 'gpu-results' },
      seconds: { type: 'string', default: '8' },
      images: { type: 'string', default: '48' },
      'image-kind': { type: 'string', default: 'medium' },
      'images-dir': { type: 'string' },
      'raw-batches': { type: 'string', default: '32,128' },
      batches: { type: 'string', default: '1,8,32,64,128' },
      'pipeline-batch': { type: 'string', default: '32' },
    },
  });
  if (values.phase) {
    try {
      const result = await runPhase(
        JSON.parse(values.phase) as Phase,
        JSON.parse(values.context ?? '{}') as PhaseContext,
      );
      process.stdout.write(`\n${JSON.stringify({ ok: true, result })}\n`);
      return 0;
    } catch (error) {
      const message =
        error instanceof Error
          ? `${(error as { code?: string }).code ? `[${(error as { code?: string }).code}] ` : ''}${error.message}`
          : String(error);
      process.stdout.write(`\n${JSON.stringify({ ok: false, error: message })}\n`);
      return 1;
    }
  }
  if (!values.model) throw new Error('--model <dir> is required');
  const kind = values['image-kind'] as ImageKind;
  if (!(kind in IMAGE_KINDS))
    throw new Error(`--image-kind must be one of ${Object.keys(IMAGE_KINDS).join(', ')}`);
  const options: MeasureOptions = {
    provider: values.provider,
    modelDir: values.model,
    outDir: resolve(values.out),
    seconds: Number(values.seconds),
    imageCount: numberList(values.images, '--images')[0] as number,
    imageKind: kind,
    ...(values['images-dir'] ? { imagesDir: values['images-dir'] } : {}),
    rawBatches: numberList(values['raw-batches'], '--raw-batches'),
    classifierBatches: numberList(values.batches, '--batches'),
    pipelineBatch: numberList(values['pipeline-batch'], '--pipeline-batch')[0] as number,
    cores: availableParallelism(),
  };
  const results = await measure(options, (m) => process.stderr.write(`${m}\n`));
  const markdown = renderMarkdown(results);
  await writeFile(join(options.outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(options.outDir, 'results.md'), markdown);
  process.stdout.write(markdown);
  process.stderr.write(`wrote ${join(options.outDir, 'results.json')} and results.md\n`);
  return 0;
}

const entry = process.argv[1] ?? '';
if (/measure\.(ts|mjs)$/.test(entry)) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`measure: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
