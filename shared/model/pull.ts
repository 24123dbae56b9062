import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { CODE } from '../error-codes.ts';
import { errorMessage, ModelError } from '../errors.ts';
import { PACKAGE_ROOT } from '../paths.ts';
import { inputSpecSchema, loadModelBundle, type Manifest, manifestSchema } from './manifest.ts';
import { MODEL_NAME, modelsCacheDir } from './model-store.ts';
import { OnnxSessionWorker } from './onnx-worker.ts';

/** The registry shipped in the repo; LABELER_MODEL_REGISTRY or --registry name another. */
export const DEFAULT_REGISTRY = join(PACKAGE_ROOT, 'models', 'registry.json');
export const REGISTRY_ENV = 'LABELER_MODEL_REGISTRY';

const registryEntrySchema = z.object({
  description: z.string().optional(),
  url: z.string().url(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().positive(),
  /** Labels file, relative to the registry file. */
  labelsFile: z.string().min(1),
  /** Where the numbers come from, for a reader checking the pin. */
  source: z.string().optional(),
  manifest: z.object({
    version: z.string().min(1),
    description: z.string().optional(),
    // Names may be left out: pull reads them from the graph when it has one input and one output.
    input: inputSpecSchema.extend({ name: z.string().min(1).optional() }),
    output: z.object({ name: z.string().min(1).optional(), kind: z.enum(['logits', 'probabilities']) }),
  }),
});
const registrySchema = z.object({
  schemaVersion: z.literal(1),
  models: z.record(z.string().regex(MODEL_NAME), registryEntrySchema),
});
export type RegistryEntry = z.infer<typeof registryEntrySchema>;
export interface Registry {
  readonly path: string;
  readonly models: Readonly<Record<string, RegistryEntry>>;
}

export async function readRegistry(path: string): Promise<Registry> {
  const text = await readFile(path, 'utf8').catch((cause: unknown) => {
    throw new ModelError(CODE.model.registryInvalid, `cannot read the model registry ${path}`, { cause });
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ModelError(CODE.model.registryInvalid, `${path} is not valid JSON`, { cause });
  }
  const parsed = registrySchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ModelError(CODE.model.registryInvalid, `${path}: ${problems.join('; ')}`);
  }
  return { path, models: parsed.data.models };
}

export interface PullOptions {
  /** @default $LABELER_MODEL_REGISTRY or models/registry.json */
  readonly registry?: string;
  /** @default the models cache folder of that name */
  readonly out?: string;
  /** Told each time bytes arrive, and once when a download resumes. */
  readonly onProgress?: (event: { received: number; total: number; resumedFrom?: number }) => void;
}

export interface PullResult {
  readonly dir: string;
  readonly manifest: Manifest;
  /** Bytes already on disk from an earlier, interrupted pull. */
  readonly resumedFrom: number;
  readonly downloaded: number;
}

/**
 * Downloads a registry model into a folder and makes it loadable: the ONNX file goes to
 * model.onnx.partial, resumed with an HTTP Range request when an earlier pull stopped
 * part-way; only bytes whose sha256 and size match the registry become model.onnx; the
 * manifest is written last, so a folder is never a model until it is a verified one.
 * Throws ModelError: model/unknown-name, model/registry-invalid, model/download-failed
 * (retryable: run again to resume), model/checksum-mismatch (the partial file is deleted).
 */
export async function pullModel(name: string, options: PullOptions = {}): Promise<PullResult> {
  const registryPath = resolve(options.registry ?? process.env[REGISTRY_ENV] ?? DEFAULT_REGISTRY);
  const registry = await readRegistry(registryPath);
  const entry = registry.models[name];
  if (!entry) {
    const known = Object.keys(registry.models);
    throw new ModelError(
      CODE.model.unknownName,
      `${registryPath} lists no model "${name}" (it lists: ${known.length > 0 ? known.join(', ') : 'none'})`,
    );
  }
  const dir = resolve(options.out ?? join(modelsCacheDir(), name));
  await mkdir(dir, { recursive: true });
  // An earlier pull's manifest would name a file about to change.
  await rm(join(dir, 'manifest.json'), { force: true });
  const partial = join(dir, 'model.onnx.partial');
  const { resumedFrom, downloaded } = await download(entry, partial, options.onProgress);

  const actual = await sha256Of(partial);
  if (actual !== entry.sha256) {
    await rm(partial, { force: true });
    throw new ModelError(
      CODE.model.checksumMismatch,
      `${entry.url} gave ${entry.size} bytes with sha256 ${actual}; the registry pins ${entry.sha256}. ` +
        'Nothing was installed; the download was deleted.',
    );
  }
  const modelPath = join(dir, 'model.onnx');
  await rename(partial, modelPath);

  const labels = await readFile(resolve(dirname(registryPath), entry.labelsFile), 'utf8').catch(
    (cause: unknown) => {
      throw new ModelError(
        CODE.model.registryInvalid,
        `labels file ${entry.labelsFile} of "${name}" is missing`,
        {
          cause,
        },
      );
    },
  );
  await writeFile(join(dir, 'labels.txt'), labels);

  const names = await graphNames(modelPath, entry);
  const manifest = manifestSchema.parse({
    schemaVersion: 1,
    id: name,
    version: entry.manifest.version,
    description: entry.manifest.description ?? entry.description,
    file: 'model.onnx',
    sha256: entry.sha256,
    labelsFile: 'labels.txt',
    input: { ...entry.manifest.input, name: names.input },
    output: { ...entry.manifest.output, name: names.output },
  });
  const tmp = join(dir, 'manifest.json.partial');
  await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(tmp, join(dir, 'manifest.json'));
  // Fails here, not at the first label run, if the registry's manifest fields do not fit.
  await loadModelBundle(dir);
  return { dir, manifest, resumedFrom, downloaded };
}

async function download(
  entry: RegistryEntry,
  partial: string,
  onProgress: PullOptions['onProgress'],
): Promise<{ resumedFrom: number; downloaded: number }> {
  let have = await stat(partial).then(
    (s) => s.size,
    () => 0,
  );
  if (have > entry.size) {
    await rm(partial, { force: true });
    have = 0;
  }
  if (have === entry.size) return { resumedFrom: have, downloaded: 0 };

  let response: Response;
  try {
    response = await fetch(entry.url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {} });
  } catch (cause) {
    throw downloadFailed(entry, `cannot connect: ${errorMessage(cause)}`, have, cause);
  }
  let resumedFrom = have;
  if (response.status === 200) {
    // The server sent the whole file (it ignores ranges, or nothing was there yet): start over.
    resumedFrom = 0;
  } else if (response.status !== 206 || have === 0) {
    await response.body?.cancel();
    throw downloadFailed(entry, `HTTP ${response.status} ${response.statusText}`, have);
  } else {
    const range = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
    if (!range || Number(range[1]) !== have) {
      await response.body?.cancel();
      throw downloadFailed(
        entry,
        `asked for bytes from ${have}, got "${response.headers.get('content-range')}"`,
        have,
      );
    }
  }
  if (!response.body) throw downloadFailed(entry, 'the response has no body', have);
  if (resumedFrom > 0) onProgress?.({ received: resumedFrom, total: entry.size, resumedFrom });

  let received = resumedFrom;
  const counted = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
  counted.on('data', (chunk: Buffer) => {
    received += chunk.length;
    onProgress?.({ received, total: entry.size });
  });
  try {
    await pipeline(counted, createWriteStream(partial, { flags: resumedFrom > 0 ? 'a' : 'w' }));
  } catch (cause) {
    throw downloadFailed(entry, `the transfer stopped: ${errorMessage(cause)}`, received, cause);
  }
  if (received > entry.size) {
    await rm(partial, { force: true });
    throw new ModelError(
      CODE.model.checksumMismatch,
      `${entry.url} sent ${received} bytes; the registry pins ${entry.size}. The download was deleted.`,
    );
  }
  if (received < entry.size) {
    throw downloadFailed(entry, `the transfer ended at ${received} of ${entry.size} bytes`, received);
  }
  return { resumedFrom, downloaded: received - resumedFrom };
}

function downloadFailed(entry: RegistryEntry, detail: string, have: number, cause?: unknown): ModelError {
  return new ModelError(
    CODE.model.downloadFailed,
    `${entry.url}: ${detail}. ${have} of ${entry.size} bytes are kept; run the same pull again to resume.`,
    { cause, permanent: false },
  );
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** The input and output names: the registry's, or the graph's own when it has just one of each. */
async function graphNames(
  modelPath: string,
  entry: RegistryEntry,
): Promise<{ input: string; output: string }> {
  const given = { input: entry.manifest.input.name, output: entry.manifest.output.name };
  if (given.input && given.output) return { input: given.input, output: given.output };
  const started = await OnnxSessionWorker.start(await readFile(modelPath), {
    executionProviders: ['cpu'],
  }).catch((cause: unknown) => {
    throw new ModelError(
      CODE.model.loadFailed,
      `onnxruntime cannot open ${modelPath}: ${errorMessage(cause)}`,
      {
        cause,
      },
    );
  });
  await started.worker.terminate();
  const { inputNames, outputNames } = started.metadata;
  const pick = (names: readonly string[], what: string): string => {
    if (names.length !== 1 || !names[0]) {
      throw new ModelError(
        CODE.model.registryInvalid,
        `${modelPath} has ${what}s ${names.join(', ')}; the registry entry must name the one to use`,
      );
    }
    return names[0];
  };
  return {
    input: given.input ?? pick(inputNames, 'input'),
    output: given.output ?? pick(outputNames, 'output'),
  };
}
