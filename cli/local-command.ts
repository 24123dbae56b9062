import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LOCAL_DEFAULTS, type LocalStack, startLocalStack } from '../local/stack.ts';
import { DynamoResultsStore } from '../shared/aws/dynamo-results-store.ts';
import { uploadFiles } from '../shared/aws/upload.ts';
import { AccuracyCounter, readExpectedLabels } from '../shared/labeling/accuracy.ts';
import type { BatchReport } from '../shared/labeling/classify-records.ts';
import { listFiles } from '../shared/labeling/local-files.ts';
import { imageId } from '../shared/labeling/results.ts';
import { waitForResults } from '../shared/labeling/wait-for-results.ts';
import { loadModelBundle } from '../shared/model/manifest.ts';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../shared/paths.ts';
import { UPLOAD_FILTER } from '../shared/settings.ts';
import { parse, positiveInt, UsageError } from './args.ts';
import { printedLabels, reportAccuracy } from './output.ts';
import { Progress } from './progress.ts';

export const LOCAL_HELP = `Usage: labeler local <up|run> [options]

The whole pipeline on this machine, against real emulators on 127.0.0.1: S3 and
SQS (fauxqs), DynamoDB Local (Java), S3 event notifications, and the SQS event
source mapping invoking the real classify handler. No AWS account needed.

  labeler local up [--data-dir <dir>]
      Runs the stack until Ctrl-C and prints its endpoints. DynamoDB is kept in
      <dir> (default .labeler/); S3 and SQS are in memory. "labeler query" finds
      the running stack through <dir>/endpoints.json.

  labeler local run <folder> [--model <dir>] [--expect <csv>] [--timeout <s>]
      Boots a fresh in-memory stack, uploads every file in <folder> to the images
      bucket, waits until each has a result, prints one JSON line per file (from
      the results table) and a summary on stderr.

Options:
  --model <dir>      model folder (default: the bundled Fashion-MNIST EfficientNet)
  --expect <csv>     a "file,label" CSV: report top-1 accuracy on stderr
  --timeout <s>      give up waiting for results after this long (default 600)
  --threads <n>      inference threads per invocation (default 1)
  --concurrency <n>  classify invocations in flight (default 2; Lambda runs many)
  --data-dir <dir>   where "local up" keeps its state (default .labeler)
  -h, --help         show this help

Exit status (run): 0 when every file has a result row (ok or failed), 1 when some
never got one within the timeout, 2 for a usage error, 3 for a model error.`;

export const DEFAULT_DATA_DIR = join(PACKAGE_ROOT, '.labeler');

export async function localCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    model: { type: 'string' },
    expect: { type: 'string' },
    timeout: { type: 'string' },
    threads: { type: 'string' },
    concurrency: { type: 'string' },
    'data-dir': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  const [sub, ...rest] = positionals;
  if (values.help || sub === undefined) {
    process.stdout.write(`${LOCAL_HELP}\n`);
    return values.help ? 0 : 2;
  }
  const modelDir = values.model ? resolve(values.model) : DEFAULT_MODEL_DIR;
  const tuning = {
    intraOpThreads: positiveInt(values.threads, '--threads', LOCAL_DEFAULTS.intraOpThreads),
    concurrency: positiveInt(values.concurrency, '--concurrency', LOCAL_DEFAULTS.concurrency),
  };
  if (sub === 'up') {
    return localUp(values['data-dir'] ? resolve(values['data-dir']) : DEFAULT_DATA_DIR, modelDir, tuning);
  }
  if (sub === 'run') {
    const folder = rest[0];
    if (!folder || rest.length > 1) throw new UsageError('"local run" takes exactly one folder');
    const timeoutMs = positiveInt(values.timeout, '--timeout', 600) * 1000;
    return localRun(resolve(folder), modelDir, values.expect, timeoutMs, tuning);
  }
  throw new UsageError(`unknown subcommand "local ${sub}"`);
}

type Tuning = { intraOpThreads: number; concurrency: number };

async function localUp(dataDir: string, modelDir: string, tuning: Tuning): Promise<number> {
  await mkdir(join(dataDir, 'dynamodb'), { recursive: true });
  const stack = await startLocalStack({ dataDir: join(dataDir, 'dynamodb'), modelDir, ...tuning });
  const endpointsFile = join(dataDir, 'endpoints.json');
  // Written whole, then renamed: a reader polling for the file never sees it half written.
  await writeFile(
    `${endpointsFile}.tmp`,
    `${JSON.stringify({ region: stack.region, endpoints: stack.endpoints, names: stack.names, pid: process.pid }, null, 2)}\n`,
  );
  await rename(`${endpointsFile}.tmp`, endpointsFile);
  process.stdout.write(
    [
      'Labeler local stack is up (Ctrl-C stops it).',
      `  S3 and SQS  ${stack.endpoints.s3}`,
      `  DynamoDB    ${stack.endpoints.dynamodb}`,
      `  upload to   s3://${stack.names.imagesBucket}/${UPLOAD_FILTER.prefix}...`,
      `  results     table ${stack.names.resultsTable}, s3://${stack.names.resultsBucket}/results/`,
      `  state       ${dataDir} (DynamoDB only; S3 and SQS live in memory)`,
      '',
      'Try: labeler query label Sneaker --min-score 0.5',
      '',
    ].join('\n'),
  );
  stack.onReport((r) =>
    process.stderr.write(
      `batch: ${r.counts.labeled} labeled, ${r.counts.failed} failed, ${r.counts.duplicates} duplicates, ` +
        `${r.counts.retried} retried\n`,
    ),
  );
  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  process.stderr.write('stopping...\n');
  await rm(endpointsFile, { force: true });
  await stack.stop();
  return 0;
}

async function localRun(
  folder: string,
  modelDir: string,
  expectCsv: string | undefined,
  timeoutMs: number,
  tuning: Tuning,
) {
  const info = await stat(folder).catch(() => undefined);
  if (!info?.isDirectory()) throw new UsageError(`${folder} is not a folder`);
  const expected = expectCsv ? await readExpectedLabels(expectCsv) : undefined;
  const files = await listFiles([folder]);
  const bundle = await loadModelBundle(modelDir);
  const model = { id: bundle.manifest.id, version: bundle.manifest.version };

  const bootStarted = performance.now();
  const stack = await startLocalStack({ modelDir, ...tuning });
  const bootSeconds = (performance.now() - bootStarted) / 1000;
  try {
    return await runThroughStack(stack, folder, files, model, expected, timeoutMs, bootSeconds);
  } finally {
    await stack.stop();
  }
}

async function runThroughStack(
  stack: LocalStack,
  folder: string,
  files: string[],
  model: { id: string; version: string },
  expected: Map<string, string> | undefined,
  timeoutMs: number,
  bootSeconds: number,
): Promise<number> {
  const totals = { duplicates: 0, retried: 0, invocations: 0 };
  const stageMs = { s3Get: 0, decode: 0, inference: 0, writes: 0, export: 0 };
  stack.onReport((r: BatchReport) => {
    totals.duplicates += r.counts.duplicates;
    totals.retried += r.counts.retried;
    totals.invocations++;
    for (const k of Object.keys(stageMs) as Array<keyof typeof stageMs>) stageMs[k] += r.stageMs[k];
  });
  const cpuBefore = process.cpuUsage();
  // The handler runs in execution environments (child processes): their CPU counts too.
  const otherPids = [stack.dynamoDbPid, ...(stack.environments?.pids ?? [])];
  const otherCpuBefore = await cpuSecondsOf(otherPids);
  const started = performance.now();
  const progress = new Progress(files.length);
  const uploaded = await uploadFiles(
    stack.clients.s3,
    { bucket: stack.names.imagesBucket, prefix: UPLOAD_FILTER.prefix, root: folder },
    files,
  );
  const store = new DynamoResultsStore(stack.clients.db, stack.names.resultsTable);
  let shown = 0;
  const results = await waitForResults(store, uploaded, model, {
    timeoutMs,
    onProgress: (done) => {
      progress.tick(done - shown, 0);
      shown = done;
    },
  }).catch((error: unknown) => {
    progress.finish();
    throw error;
  });
  progress.finish();
  const wallSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const otherCpu = (await cpuSecondsOf(otherPids)) - otherCpuBefore;

  const accuracy = expected ? new AccuracyCounter(expected) : undefined;
  let ok = 0;
  let failed = 0;
  const lines: string[] = [];
  for (const u of uploaded) {
    const r = results.get(imageId(u));
    if (!r) continue;
    const row =
      r.status === 'ok'
        ? { file: u.file, key: u.key, model: r.model.id, status: 'ok', labels: printedLabels(r.labels) }
        : { file: u.file, key: u.key, model: r.model.id, status: 'failed', error: r.error };
    lines.push(JSON.stringify(row));
    if (r.status === 'ok') ok++;
    else failed++;
    accuracy?.add(u.file, r.labels[0]?.label);
  }
  process.stdout.write(lines.length > 0 ? `${lines.join('\n')}\n` : '');

  const summary = {
    files: files.length,
    ok,
    failed,
    duplicates: totals.duplicates,
    retried: totals.retried,
    invocations: totals.invocations,
    imagesPerSecond: files.length / wallSeconds,
    wallSeconds,
    bootSeconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6 + otherCpu,
    stageSeconds: Object.fromEntries(Object.entries(stageMs).map(([k, v]) => [k, v / 1000])),
  };
  process.stderr.write(
    `${files.length} files through S3 → SQS → classify → DynamoDB + S3: ${ok} ok, ${failed} failed, ` +
      `${totals.duplicates} duplicates; ${summary.imagesPerSecond.toFixed(1)} images/s, ` +
      `wall ${wallSeconds.toFixed(2)} s (stack boot ${bootSeconds.toFixed(1)} s), model ${model.id}\n`,
  );
  reportAccuracy(accuracy);
  process.stderr.write(`summary ${JSON.stringify(summary)}\n`);
  return lines.length === files.length ? 0 : 1;
}

async function cpuSecondsOf(pids: ReadonlyArray<number | undefined>): Promise<number> {
  const each = await Promise.all(pids.map(processCpuSeconds));
  return each.reduce((a, b) => a + b, 0);
}

/** User + system CPU seconds of another process (Linux /proc), 0 where unavailable. */
async function processCpuSeconds(pid: number | undefined): Promise<number> {
  if (!pid) return 0;
  try {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}
