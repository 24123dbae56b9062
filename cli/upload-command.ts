import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DynamoResultsStore } from '../shared/aws/dynamo-results-store.ts';
import {
  CONTENT_SHA256_METADATA,
  keyFor,
  keyTooLong,
  type UploadOutcome,
  uploadFiles,
} from '../shared/aws/upload.ts';
import { LabelerError } from '../shared/errors.ts';
import { AccuracyCounter, readExpectedLabels } from '../shared/labeling/accuracy.ts';
import { mapLimit } from '../shared/labeling/image-labeler.ts';
import { folderPrefix } from '../shared/labeling/job-location.ts';
import { type ImageResult, imageId, type ModelRef, printedResult } from '../shared/labeling/results.ts';
import { waitForResults } from '../shared/labeling/wait-for-results.ts';
import { listFiles } from '../shared/local-files.ts';
import { readManifest } from '../shared/model/manifest.ts';
import { resolveModelDir } from '../shared/model/model-store.ts';
import { IMAGE_LIMITS, UPLOAD_FILTER } from '../shared/settings.ts';
import { parse, positiveInt, UsageError } from './args.ts';
import { count, reportAccuracy, shellWord, signalStatus } from './output.ts';
import { formatBytes, Progress, TransferProgress } from './progress.ts';
import { openStack, STACK_HELP, STACK_OPTIONS, type StackConnection } from './stack.ts';

/** Files in flight at once: enough to hide each request's latency, few enough for memory (2 parts each). */
export const UPLOAD_CONCURRENCY = 16;

export const UPLOAD_HELP = `Usage: labeler upload <files or folders...> [options]

Uploads images to the stack's images bucket. Folders are walked recursively,
following symbolic links (hidden files skipped); a folder's files keep their path
below it, a file named alone its name: "upload photos/" stores photos/a/b.png as
<prefix>a/b.png. Only images go up: the format is read from each file's first
bytes (JPEG, PNG, WebP, TIFF, GIF, AVIF), never from its name. Files above 5 MiB
go as multipart uploads. Each object carries the SHA-256 of its content (metadata
"${CONTENT_SHA256_METADATA}"); a file whose key already holds the same content is not sent
again, so running the same upload after an interruption sends only what is missing.

Under the prefix ${UPLOAD_FILTER.prefix} (the default) each upload is labeled on arrival.
Other prefixes are not labeled automatically: label them with
"labeler jobs start --prefix <p>" (a datasets/ prefix is meant for jobs).

Output: one JSON line per path named or found, in order, as each is done:
  {"file":"a.png","key":"images/a.png","status":"uploaded","eTag":"...","size":812}
  {"file":"b.png","key":"images/b.png","status":"present","eTag":"...","size":790}
  {"file":"notes.txt","key":"images/notes.txt","status":"skipped","error":{"code":"image/unsupported-format",...}}
  {"file":"c.png","key":"images/c.png","status":"failed","error":{"code":"aws/unavailable",...}}
"present": already stored with the same content; "skipped": never sent because of
the file itself (not an image, empty, over the size limit, missing, unreadable, not
a regular file, a key another file already takes); "failed": the transfer failed
(run the same command again). A progress bar (files, bytes, rate, time left) is
drawn on stderr when it is a terminal, then a summary.

With --wait it then waits until every uploaded or present object has a result
and prints, instead, one line per path in the shape "labeler label" prints, plus
"key" and "model" (as "labeler local run" does).

Options:
  --prefix <p>       key prefix (default ${UPLOAD_FILTER.prefix}); a "/" is added if missing
  --concurrency <n>  files in flight at once (default ${UPLOAD_CONCURRENCY})
  --wait             wait for every object's result and print the results
  --expect <csv>     with --wait: a "file,label" CSV; report top-1 accuracy on stderr
  --timeout <s>      with --wait: give up waiting after this long (default 600)
  --model <dir>      with --wait: the model whose results to wait for (default: the
                     bundled one; the stack's model)
  -h, --help         show this help

${STACK_HELP}

Exit status: 0 when every path got its row and no transfer failed (skipped files
included) and, with --wait, every object has its result (ok or failed); 1 when a
transfer failed, some object got no result within --timeout, or the stack cannot
be reached; 2 for a usage error (including --wait with a prefix that is not
labeled on arrival); 130 on Ctrl-C and 143 on SIGTERM (transfers in flight finish,
files not started get a "not-started" row; a second Ctrl-C ends at once); 141 when
the reader of stdout goes away.`;

export async function uploadCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    prefix: { type: 'string' },
    concurrency: { type: 'string' },
    wait: { type: 'boolean' },
    expect: { type: 'string' },
    timeout: { type: 'string' },
    model: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    ...STACK_OPTIONS,
  });
  if (values.help) {
    process.stdout.write(`${UPLOAD_HELP}\n`);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('name at least one file or folder to upload');
  const prefix = normalizePrefix(values.prefix ?? UPLOAD_FILTER.prefix);
  const concurrency = positiveInt(values.concurrency, '--concurrency', UPLOAD_CONCURRENCY);
  const wait = values.wait === true;
  for (const option of ['expect', 'timeout', 'model'] as const) {
    if (!wait && values[option] !== undefined) throw new UsageError(`--${option} goes with --wait`);
  }
  if (wait && !labeledOnArrival(prefix)) {
    throw new UsageError(
      `uploads under "${prefix}" are not labeled on arrival (only ${UPLOAD_FILTER.prefix} is), so --wait ` +
        `would never end; upload without --wait, then label them with: labeler jobs start --prefix ${shellWord(prefix)}${values.stack ? ` --stack ${shellWord(values.stack)}` : ''} --wait`,
    );
  }
  const timeoutMs = positiveInt(values.timeout, '--timeout', 600) * 1000;
  const expected = values.expect ? await readExpectedLabels(values.expect) : undefined;
  const model = wait ? await modelOf(values.model) : undefined;

  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupt.signal.aborted) return;
    process.stderr.write(`${signal}: finishing the transfers in flight, starting no more\n`);
    interrupt.abort(signal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const stack = await openStack(values);
    try {
      if (!labeledOnArrival(prefix)) {
        process.stderr.write(
          `note: objects under "${prefix}" are not labeled on arrival (only ${UPLOAD_FILTER.prefix} is); ` +
            `label them with: labeler jobs start --prefix ${shellWord(prefix)}${values.stack ? ` --stack ${shellWord(values.stack)}` : ''}\n`,
        );
      }
      const report = await runUpload(stack, {
        paths: positionals,
        prefix,
        concurrency,
        signal: interrupt.signal,
        ...(model ? { wait: { model, timeoutMs, ...(expected ? { expected } : {}) } } : {}),
      });
      writeUploadSummary(report, stack);
      return uploadExitStatus(report, interrupt.signal.reason as NodeJS.Signals | undefined);
    } finally {
      stack.close();
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function modelOf(dir: string | undefined): Promise<ModelRef> {
  const manifest = await readManifest(resolveModelDir(dir));
  return { id: manifest.id, version: manifest.version };
}

/**
 * Keys are `<prefix><path>`: a prefix names a folder, so it ends with "/" unless empty;
 * the same rule as `jobs start --prefix` (shared/labeling/job-location.ts).
 */
export function normalizePrefix(prefix: string): string {
  try {
    return folderPrefix(prefix);
  } catch (error) {
    if (error instanceof LabelerError) throw new UsageError(error.message);
    throw error;
  }
}

/** Whether objects under this prefix trigger labeling (the stack's S3 notification filter). */
export function labeledOnArrival(prefix: string): boolean {
  return prefix.startsWith(UPLOAD_FILTER.prefix) && UPLOAD_FILTER.suffixes.length === 0;
}

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
}

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
  };
}

interface Entry {
  readonly path: string;
  readonly key?: string;
  readonly error?: LabelerError;
}

/**
 * The upload and its rows, for `labeler upload` and `labeler local run` alike, against
 * any stack: lists the paths (every path a row), sends the images, and with `wait`
 * waits for their results and prints them.
 */
export async function runUpload(stack: StackConnection, request: UploadRequest): Promise<UploadReport> {
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
  const rows = request.wait ? undefined : new OrderedRows(entries.length);
  if (rows) {
    entries.forEach((entry, index) => {
      if (entry.error) rows.set(index, uploadRow({ entry }));
    });
  }
  const progress = new TransferProgress(toSend.length, totalBytes);
  const started = performance.now();
  let bytesSent = 0;
  const outcomes = await uploadFiles(
    stack.clients.s3,
    {
      bucket: stack.resources.imagesBucket,
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
  const store = new DynamoResultsStore(stack.clients.db, stack.resources.resultsTable);
  const labeling = new Progress(stored.length);
  let shown = 0;
  const waited = await waitForResults(store, stored, request.wait.model, {
    timeoutMs: request.wait.timeoutMs,
    signal: request.signal,
    onProgress: (done) => {
      labeling.tick(done - shown, 0);
      shown = done;
    },
  }).finally(() => labeling.finish());

  const accuracy = request.wait.expected ? new AccuracyCounter(request.wait.expected) : undefined;
  const lines: string[] = [];
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
    lines.push(JSON.stringify(row));
    if (row.status === 'ok') ok++;
    else failed++;
    if (result) accuracy?.add(entry.path, result.labels[0]?.label);
  });
  process.stdout.write(lines.length > 0 ? `${lines.join('\n')}\n` : '');
  reportAccuracy(accuracy);
  return {
    ...base,
    results: {
      ok,
      failed,
      pending,
      ...(waited.stopped ? { stopped: waited.stopped } : {}),
      timeoutMs: request.wait.timeoutMs,
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
          'upload/duplicate-key',
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

/** Writes rows in their input order as soon as every earlier row is known. */
class OrderedRows {
  /** undefined: not known yet; null: written. */
  readonly #rows: Array<Record<string, unknown> | null | undefined>;
  #next = 0;

  constructor(size: number) {
    this.#rows = new Array(size);
  }

  set(index: number, row: Record<string, unknown>): void {
    this.#rows[index] = row;
    const lines: string[] = [];
    for (let row = this.#rows[this.#next]; row; row = this.#rows[this.#next]) {
      lines.push(JSON.stringify(row));
      this.#rows[this.#next++] = null;
    }
    if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
  }
}

function writeUploadSummary(report: UploadReport, stack: StackConnection): void {
  const rate = report.uploadSeconds > 0 ? report.bytesSent / report.uploadSeconds : 0;
  process.stderr.write(
    `upload to s3://${stack.resources.imagesBucket} (stack ${stack.name}): ${count(report.paths, 'path')}, ` +
      `${report.uploaded} uploaded, ${report.present} already present, ${report.skipped} skipped, ` +
      `${report.failed} failed${report.notStarted > 0 ? `, ${report.notStarted} not started` : ''}; ` +
      `${formatBytes(report.bytesSent)} in ${report.uploadSeconds.toFixed(2)} s (${formatBytes(rate)}/s)\n`,
  );
  if (report.results) {
    const r = report.results;
    process.stderr.write(`results: ${r.ok} ok, ${r.failed} failed, ${r.pending.length} pending\n`);
  }
  const { results, ...counts } = report;
  const summary = {
    ...counts,
    ...(results ? { ok: results.ok, resultsFailed: results.failed, pending: results.pending.length } : {}),
  };
  process.stderr.write(`summary ${JSON.stringify(summary)}\n`);
  if (report.failed > 0) {
    process.stderr.write(
      `${count(report.failed, 'transfer')} failed: run the same command again to retry them\n`,
    );
  }
}

function uploadExitStatus(report: UploadReport, signal: NodeJS.Signals = 'SIGINT'): number {
  const pending = report.results?.pending ?? [];
  if (report.interrupted) {
    if (pending.length > 0 || report.notStarted > 0) {
      process.stderr.write(
        `interrupted: ${report.notStarted} files not started${report.results ? `, ${pending.length} without a result` : ''}\n`,
      );
    }
    return signalStatus(signal);
  }
  if (pending.length > 0) {
    const timeout = Math.round((report.results?.timeoutMs ?? 0) / 1000);
    throw new LabelerError(
      'pipeline/timeout',
      `${pending.length} of ${report.files} files have no result after ${timeout} s ` +
        `(first: ${pending.slice(0, 3).join(', ')}); check "labeler status" and the dead-letter queue`,
    );
  }
  return report.failed > 0 ? 1 : 0;
}
