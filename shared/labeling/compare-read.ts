import { existsSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import { readManifest } from '../model/manifest.ts';
import { resolveModelDir } from '../model/model-store.ts';
import type { ComparedModel } from './compare.ts';
import { type EvaluatedResult, resultFromLine, resultFromStore } from './evaluate.ts';
import type { ExportPorts } from './export.ts';
import type { ModelRef } from './results.ts';
import { imageId } from './results.ts';

/**
 * Where `labeler compare` gets its two result sets: JSON Lines files, or a stack's results
 * for two models over a prefix or a job's images.
 */

/** A model as `--model` names it, resolved: its id and version, and its classes when a folder says. */
export interface ModelChoice extends ComparedModel {
  readonly ref: ModelRef;
}

const ID_AT_VERSION = /^([a-z0-9][a-z0-9._-]*)@(\S+)$/;

/**
 * `id@version` names results directly (no folder needed: a stack may hold results of a
 * model this machine does not have); a path or a model name is a folder whose manifest
 * says the id and version. An existing path wins over `id@version`, as resolveModelDir's.
 */
export async function resolveModelChoice(ref: string): Promise<ModelChoice> {
  const at = ID_AT_VERSION.exec(ref);
  if (at && !existsSync(resolve(ref))) {
    const [, id, version] = at as unknown as [string, string, string];
    return { name: `${id}@${version}`, ref: { id, version } };
  }
  const dir = resolveModelDir(ref);
  const manifest = await readManifest(dir);
  const labelsPath = join(dir, manifest.labelsFile);
  const text = await readFile(labelsPath, 'utf8').catch((cause: unknown) => {
    throw new LabelerError(CODE.model.notFound, `labels file ${labelsPath} is missing`, { cause });
  });
  const classes = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return {
    name: `${manifest.id}@${manifest.version}`,
    ref: { id: manifest.id, version: manifest.version },
    classes,
  };
}

/**
 * A results file's lines as results of `model`. A line naming another model (export and
 * query lines carry `model` and `modelVersion`) is refused: the file is not that model's.
 */
export async function readResultsFile(
  file: string,
  model: ModelChoice,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<EvaluatedResult[]> {
  const name = file === '-' ? 'standard input' : file;
  const input =
    file === '-'
      ? stdin
      : (
          await open(file).catch((cause: NodeJS.ErrnoException) => {
            throw new LabelerError(CODE.results.unreadable, `${file} cannot be read: ${cause.message}`, {
              cause,
            });
          })
        ).createReadStream({ encoding: 'utf8' });
  const results: EvaluatedResult[] = [];
  let n = 0;
  for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
    n++;
    if (line.trim() === '') continue;
    const where = `${name} line ${n}`;
    const result = resultFromLine(line, where);
    const row = JSON.parse(line) as { model?: unknown; modelVersion?: unknown };
    if (
      (typeof row.model === 'string' && row.model !== model.ref.id) ||
      (typeof row.modelVersion === 'string' && row.modelVersion !== model.ref.version)
    ) {
      throw new LabelerError(
        CODE.compare.modelMismatch,
        `${where} is a result of ${String(row.model)}@${String(row.modelVersion ?? '?')}, not of ${model.name} (--model and --results pair up in order)`,
      );
    }
    results.push(result);
  }
  return results;
}

/** One image of a stack selection and each model's result for it, if any. */
export interface ResultPair {
  readonly image: { readonly bucket: string; readonly key: string };
  readonly a?: EvaluatedResult;
  readonly b?: EvaluatedResult;
}

export type CompareSelection =
  | { readonly by: 'prefix'; readonly bucket: string; readonly prefix: string }
  | { readonly by: 'job'; readonly jobId: string };

/** Images per findExisting call: one BatchGet reads 100 results. */
const PAGE = 100;
const LIST_PAGE = 1000;

/**
 * Each image of the selection with model A's and model B's results, read per model through
 * the store's key lookup (results are kept per image and model): a prefix's listing, or the
 * images a job labeled or failed, whichever model the job used. At most one page is held.
 */
export async function* resultPairs(
  selection: CompareSelection,
  ports: Pick<ExportPorts, 'results' | 'jobs' | 'listPage'>,
  a: ModelRef,
  b: ModelRef,
): AsyncGenerator<ResultPair> {
  const pairsOf = async function* (images: ReadonlyArray<{ bucket: string; key: string }>) {
    const [foundA, foundB] = await Promise.all([
      ports.results.findExisting(images, a),
      ports.results.findExisting(images, b),
    ]);
    for (const image of images) {
      const ra = foundA.get(imageId(image));
      const rb = foundB.get(imageId(image));
      yield {
        image,
        ...(ra ? { a: resultFromStore(ra) } : {}),
        ...(rb ? { b: resultFromStore(rb) } : {}),
      };
    }
  };
  if (selection.by === 'job') {
    if (!(await ports.jobs.get(selection.jobId)))
      throw new LabelerError(CODE.job.notFound, `job ${selection.jobId} does not exist`);
    let batch: Array<{ bucket: string; key: string }> = [];
    for await (const r of ports.jobs.results(selection.jobId)) {
      batch.push({ bucket: r.bucket, key: r.key });
      if (batch.length === PAGE) {
        yield* pairsOf(batch);
        batch = [];
      }
    }
    if (batch.length > 0) yield* pairsOf(batch);
    return;
  }
  let token: string | undefined;
  do {
    const page = await ports.listPage(selection.bucket, selection.prefix, token, LIST_PAGE);
    const images = page.objects.map((o) => ({ bucket: selection.bucket, key: o.key }));
    for (let i = 0; i < images.length; i += PAGE) yield* pairsOf(images.slice(i, i + PAGE));
    token = page.next;
  } while (token);
}
