import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import { AccuracyCounter } from '../labeling/accuracy.ts';
import { mapLimit } from '../labeling/image-labeler.ts';
import {
  type ImageResult,
  imageId,
  type ModelRef,
  printedResult,
  type ResultsStore,
} from '../labeling/results.ts';
import { waitForResults } from '../labeling/wait-for-results.ts';
import { listFiles } from '../local-files.ts';
import { IMAGE_LIMITS } from '../settings.ts';
import { keyFor, keyTooLong, type UploadOutcome, uploadFiles } from './upload.ts';

/** Files in flight at once: enough to hide each request's latency, few enough for memory (2 parts each). */
export const UPLOAD_CONCURRENCY = 16;

export interface UploadRequest {
  /** Files and folders, as named. */
  readonly paths: readonly string[];
  readonly prefix: string;
  readonly concurrency?: number;
  readonly signal: AbortSignal;
  /** Wait for every stored object's result and print results instead of upload rows. */
  readonly wait?: {
    readonly model: ModelRef;
    readonly timeoutMs: number;
    readonly expected?: ReadonlyMap<string, string>;
  };
  /** Called once the files are listed, before the first is sent. */
  readonly onListed?: (files: number) => void;
  /** Rows in input order: without `wait` each as soon as it and every row before it is known; with it, all at the end. */
  readonly onRows: (rows: readonly Record<string, unknown>[]) => void;
  /** The transfer's progress display, given the files and bytes to send. */
  readonly transferProgress?: (files: number, bytes: number) => TransferObserver;
  /** With `wait`: the results' progress display, given the objects waited for. */
  readonly resultsProgress?: (objects: number) => ResultsObserver;
}

export interface TransferObserver {
  bytes(delta: number): void;
  /** A file is done; `unsent` of its bytes will never go. */
  file(unsent?: number): void;
  finish(): void;
}

export interface ResultsObserver {
  tick(done: number, failed: number): void;
  finish(): void;
}

/** Where a dataset goes and where its results appear. */
export interface UploadTarget {
  readonly s3: S3Client;
  readonly imagesBucket: string;
  readonly results: ResultsStore;
}

const NO_PROGRESS = {
  bytes: () => undefined,
  file: () => undefined,
  tick: () => undefined,
  finish: () => undefined,
};

export interface UploadReport {
  /** Every path named or found. */
  readonly paths: number;
  /** The ones that are files to send (the rest got a skipped row from the listing). */
  readonly files: number;
  readonly uploaded: number;
  readonly present: number;
  readonly skipped: number;
  readonly failed: number;
  readonly notStarted: number;
  readonly bytesSent: number;
  readonly uploadSeconds: number;
  readonly interrupted: boolean;
  /** With `wait`. */
  readonly results?: {
    readonly ok: number;
    readonly failed: number;
    /** Files whose object has no result (yet). */
    readonly pending: readonly string[];
    readonly stopped?: 'timeout' | 'aborted';
    readonly timeoutMs: number;
    /** With `wait.expected`: top-1 accuracy of the results against it. */
    readonly accuracy?: AccuracyCounter;
  };
}

interface Entry {
  readonly path: string;
  readonly key?: string;
  readonly error?: LabelerError;
}

/**
 * Uploading a dataset (and waiting for its results), for `labeler upload` and `labeler
 * local run` alike, against any stack: lists the paths (every path a row), sends the
 * images, and with `wait` waits for their results and gives their rows instead.
 */
export async function uploadDataset(target: UploadTarget, request: UploadRequest): Promise<UploadReport> {
  const entries = await listEntries(request.paths, request.prefix);
  const toSend = entries.flatMap((entry, index) => (entry.error || !entry.key ? [] : [{ entry, index }]));
  request.onListed?.(toSend.length);
  const sizes = await mapLimit(toSend, 32, ({ entry }) =>
    stat(entry.path).then(
      (info) => (info.size <= IMAGE_LIMITS.maxBytes ? info.size : 0),
      () => 0,
    ),
  );
  const totalBytes = sizes.reduce((a, b) => a + b, 0);

  // Without --wait each path's row goes out as soon as it and every row before it is known.
  const rows = request.wait ? undefined : new OrderedRows(entries.length, request.onRows);
  if (rows) {
    entries.forEach((entry, index) => {
      if (entry.error) rows.set(index, uploadRow({ entry }));
    });
  }
  const progress = request.transferProgress?.(toSend.length, totalBytes) ?? NO_PROGRESS;
  const started = performance.now();
  let bytesSent = 0;
  const outcomes = await uploadFiles(
    target.s3,
    {
      bucket: target.imagesBucket,
      prefix: request.prefix,
      // By position: one file named twice (a folder and a folder inside it) has two keys.
      keyOf: (file, i) => toSend[i]?.entry.key ?? file,
      maxBytes: IMAGE_LIMITS.maxBytes,
      concurrency: request.concurrency ?? UPLOAD_CONCURRENCY,
      signal: request.signal,
      onBytes: (delta) => {
        bytesSent += delta;
        progress.bytes(delta);
      },
      onOutcome: (outcome, i) => {
        progress.file(outcome.status === 'uploaded' ? 0 : (sizes[i] ?? 0));
        const at = toSend[i];
        if (rows && at) rows.set(at.index, uploadRow({ entry: at.entry, outcome }));
      },
    },
    toSend.map(({ entry }) => entry.path),
  );
  progress.finish();
  const uploadSeconds = (performance.now() - started) / 1000;
  const tally = { uploaded: 0, present: 0, skipped: 0, failed: 0, notStarted: 0 };
  for (const entry of entries) if (entry.error) tally.skipped++;
  for (const outcome of outcomes) {
    if (outcome.status === 'uploaded') tally.uploaded++;
    else if (outcome.status === 'present') tally.present++;
    else if (outcome.status === 'skipped') tally.notStarted++;
    else if (outcome.error.permanent) tally.skipped++;
    else tally.failed++;
  }
  const base = {
    paths: entries.length,
    files: toSend.length,
    ...tally,
    bytesSent,
    uploadSeconds,
    interrupted: request.signal.aborted,
  };
  if (!request.wait) return base;

  const outcomeAt = new Map(toSend.map(({ index }, i) => [index, outcomes[i] as UploadOutcome]));
  const stored = outcomes.flatMap((o) => (o.status === 'uploaded' || o.status === 'present' ? [o] : []));
  const labeling = request.resultsProgress?.(stored.length) ?? NO_PROGRESS;
  let shown = 0;
  const waited = await waitForResults(target.results, stored, request.wait.model, {
    timeoutMs: request.wait.timeoutMs,
    signal: request.signal,
    onProgress: (done) => {
      labeling.tick(done - shown, 0);
      shown = done;
    },
  }).finally(() => labeling.finish());

  const accuracy = request.wait.expected ? new AccuracyCounter(request.wait.expected) : undefined;
  const lines: Record<string, unknown>[] = [];
  const pending: string[] = [];
  let ok = 0;
  let failed = 0;
  entries.forEach((entry, index) => {
    const outcome = outcomeAt.get(index);
    const result =
      outcome?.status === 'uploaded' || outcome?.status === 'present'
        ? waited.results.get(imageId(outcome))
        : undefined;
    const row = resultRow(entry, request.wait?.model as ModelRef, outcome, result);
    if (row === 'pending') {
      pending.push(entry.path);
      return;
    }
    lines.push(row);
    if (row.status === 'ok') ok++;
    else failed++;
    if (result) accuracy?.add(entry.path, result.labels[0]?.label);
  });
  if (lines.length > 0) request.onRows(lines);
  return {
    ...base,
    results: {
      ok,
      failed,
      pending,
      ...(waited.stopped ? { stopped: waited.stopped } : {}),
      timeoutMs: request.wait.timeoutMs,
      ...(accuracy ? { accuracy } : {}),
    },
  };
}

/** The files under each path, with their keys; a key a second file would take is refused, not overwritten. */
async function listEntries(paths: readonly string[], prefix: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  const taken = new Map<string, string>();
  for (const path of paths) {
    const root = (await stat(path).catch(() => undefined))?.isDirectory() ? path : dirname(path);
    for (const file of await listFiles([path])) {
      if (file.error) {
        entries.push({ path: file.path, error: file.error });
        continue;
      }
      const key = keyFor(prefix, root, file.path);
      const tooLong = keyTooLong(key, file.path);
      if (tooLong) {
        entries.push({ path: file.path, key, error: tooLong });
        continue;
      }
      const first = taken.get(key);
      if (first !== undefined) {
        const error = new LabelerError(
          CODE.upload.duplicateKey,
          `${file.path} would be stored as ${key}, which ${first} already takes; not sent`,
        );
        entries.push({ path: file.path, key, error });
        continue;
      }
      taken.set(key, file.path);
      entries.push({ path: file.path, key });
    }
  }
  return entries;
}

/** One path's row without --wait. */
function uploadRow({ entry, outcome }: { entry: Entry; outcome?: UploadOutcome }): Record<string, unknown> {
  const where = { file: entry.path, ...(entry.key ? { key: entry.key } : {}) };
  if (entry.error) return { ...where, status: 'skipped', error: errorOf(entry.error) };
  if (!outcome) return { ...where, status: 'not-started' };
  switch (outcome.status) {
    case 'uploaded':
    case 'present':
      return { ...where, status: outcome.status, eTag: outcome.eTag, size: outcome.size };
    case 'skipped':
      return { ...where, status: 'not-started' };
    case 'failed':
      return {
        ...where,
        status: outcome.error.permanent ? 'skipped' : 'failed',
        error: errorOf(outcome.error),
      };
  }
}

/**
 * One path's row with --wait, in the shape `labeler label` prints plus `key` and `model`:
 * a path that was never sent fails with its reason; a stored object prints its result.
 */
function resultRow(
  entry: Entry,
  model: ModelRef,
  outcome: UploadOutcome | undefined,
  result: ImageResult | undefined,
): Record<string, unknown> | 'pending' {
  if (entry.error && !entry.key) return { file: entry.path, status: 'failed', error: errorOf(entry.error) };
  const refusal = entry.error ?? (outcome?.status === 'failed' ? outcome.error : undefined);
  if (refusal) {
    return { file: entry.path, key: entry.key, model: model.id, status: 'failed', error: errorOf(refusal) };
  }
  if (!result) return 'pending';
  return { file: entry.path, ...printedResult(result) };
}

function errorOf(error: LabelerError): { code: string; message: string } {
  return { code: error.code, message: error.message };
}

/** Gives rows in their input order as soon as every earlier row is known. */
class OrderedRows {
  /** undefined: not known yet; null: given. */
  readonly #rows: Array<Record<string, unknown> | null | undefined>;
  readonly #give: (rows: readonly Record<string, unknown>[]) => void;
  #next = 0;

  constructor(size: number, give: (rows: readonly Record<string, unknown>[]) => void) {
    this.#rows = new Array(size);
    this.#give = give;
  }

  set(index: number, row: Record<string, unknown>): void {
    this.#rows[index] = row;
    const ready: Record<string, unknown>[] = [];
    for (let row = this.#rows[this.#next]; row; row = this.#rows[this.#next]) {
      ready.push(row);
      this.#rows[this.#next++] = null;
    }
    if (ready.length > 0) this.#give(ready);
  }
}
