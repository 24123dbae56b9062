import { CONTENT_SHA256_METADATA } from '../shared/aws/upload.ts';
import { UPLOAD_CONCURRENCY, type UploadReport } from '../shared/aws/upload-dataset.ts';
import { CODE } from '../shared/error-codes.ts';
import { LabelerError } from '../shared/errors.ts';
import { readExpectedLabels } from '../shared/labeling/accuracy.ts';
import { folderPrefix } from '../shared/labeling/job-location.ts';
import type { ModelRef } from '../shared/labeling/results.ts';
import { readManifest } from '../shared/model/manifest.ts';
import { resolveModelDir } from '../shared/model/model-store.ts';
import { UPLOAD_FILTER } from '../shared/settings.ts';
import { parse, positiveInt, UsageError } from './args.ts';
import { count, shellWord, signalStatus } from './output.ts';
import { formatBytes } from './progress.ts';
import { openStack, STACK_HELP, STACK_OPTIONS, type StackConnection } from './stack.ts';
import { runUpload } from './upload-display.ts';

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
      CODE.pipeline.timeout,
      `${pending.length} of ${report.files} files have no result after ${timeout} s ` +
        `(first: ${pending.slice(0, 3).join(', ')}); check "labeler status" and the dead-letter queue`,
    );
  }
  return report.failed > 0 ? 1 : 0;
}
