import { readFileSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { prepareDataDir } from '../local/data-dir.ts';
import {
  lockDataDir,
  processAlive,
  removeEndpoints,
  shellEnvironment,
  writeEndpoints,
} from '../local/endpoints.ts';
import { LOCAL_DEFAULTS, type LocalModel, type LocalStack, startLocalStack } from '../local/stack.ts';
import { CODE } from '../shared/error-codes.ts';
import { errorMessage, LabelerError } from '../shared/errors.ts';
import { readExpectedLabels } from '../shared/labeling/accuracy.ts';
import type { BatchReport } from '../shared/labeling/classify-records.ts';
import { parseS3EventBody } from '../shared/labeling/s3-event.ts';
import {
  defaultModelOf,
  describeModels,
  MODEL_NAME_IN_STACK,
  modelNameOfDir,
} from '../shared/labeling/stack-models.ts';
import { loadModelBundle } from '../shared/model/manifest.ts';
import { resolveModelDir } from '../shared/model/model-store.ts';
import { UPLOAD_FILTER } from '../shared/settings.ts';
import { parse, positiveInt, UsageError } from './args.ts';
import { connectionTo, DEFAULT_DATA_DIR } from './stack.ts';
import { runUpload } from './upload-display.ts';

export const LOCAL_HELP = `Usage: labeler local <up|run> [options]

The whole pipeline on this machine, against real emulators on 127.0.0.1: S3 and
SQS (fauxqs), DynamoDB Local (Java), S3 event notifications, and the SQS event
source mapping invoking the real classify handler. No AWS account needed.

  labeler local up [--data-dir <dir>] [--gpu-worker]
      Runs the stack until Ctrl-C and prints its endpoints and the environment
      lines for the AWS CLI and SDKs. DynamoDB is kept in <dir> (default
      .labeler/); S3 objects and queued messages are in memory and gone after a
      restart. One stack per <dir>. "labeler query" finds the running stack
      through <dir>/endpoints.json. Also serves the results page ("labeler ui")
      on 127.0.0.1 and prints its URL. With --gpu-worker it also runs the GPU
      worker (on the CPU) on the bulk queue, so "jobs start --target gpu" works
      here; without it such a job is refused (job/no-gpu-worker).
      Several --model: the stack hosts each, with its own queues and workers (as
      cdk.json's "models" on AWS); uploads get the first, or --default-model;
      "jobs start --model <name>" labels with another.

  labeler local run <folder> [--model <dir|name>] [--expect <csv>] [--timeout <s>]
      Boots a fresh in-memory stack, runs "labeler upload <folder> --wait" against
      it (the same code), and stops it: every image in <folder> goes to the images
      bucket, and once each has a result one JSON line per file is printed (from
      the results table), then a summary on stderr. Files above 5 MiB go up as
      multipart uploads; a file that is not an image (sniffed) or over the size
      limit gets a failed row without being sent. Ctrl-C prints the rows so far
      and what is pending.

Options:
  --model [<name>=]<dir|name>
                     model folder, or a model pulled or exported by name ("fashion":
                     the bundled Fashion-MNIST EfficientNet, the default); in the
                     stack it is called <name>, else after its folder. "local up"
                     takes it more than once
  --default-model <name>
                     "local up": the model uploads are labeled with (default: the
                     first --model); switching it keeps every model's results
  --expect <csv>     a "file,label" CSV: report top-1 accuracy on stderr
  --timeout <s>      give up waiting for results after this long (default 600)
  --threads <n>      inference threads per invocation (default 1)
  --concurrency <n>  classify invocations in flight (default 2; Lambda runs many)
  --data-dir <dir>   where "local up" keeps its state (default .labeler)
  --gpu-worker       "local up": also run the GPU worker (a second model in memory)
  -h, --help         show this help

Exit status (run): 0 when every file has a result row (ok or failed), 1 when some
never got one within the timeout, 2 for a usage error, 3 for a model error, 130
on Ctrl-C.`;

export { DEFAULT_DATA_DIR };

export async function localCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    model: { type: 'string', multiple: true },
    'default-model': { type: 'string' },
    expect: { type: 'string' },
    timeout: { type: 'string' },
    threads: { type: 'string' },
    concurrency: { type: 'string' },
    'data-dir': { type: 'string' },
    'gpu-worker': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  const [sub, ...rest] = positionals;
  if (values.help || sub === undefined) {
    process.stdout.write(`${LOCAL_HELP}\n`);
    return values.help ? 0 : 2;
  }
  const models = (values.model ?? []).map(localModelOption);
  const tuning = {
    intraOpThreads: positiveInt(values.threads, '--threads', LOCAL_DEFAULTS.intraOpThreads),
    concurrency: positiveInt(values.concurrency, '--concurrency', LOCAL_DEFAULTS.concurrency),
  };
  if (sub === 'up') {
    if (models.length === 0) models.push({ dir: resolveModelDir(undefined) });
    const defaultModel = values['default-model'];
    const names = models.map((m) => m.name ?? modelNameOfDir(m.dir));
    if (defaultModel !== undefined && !names.includes(defaultModel)) {
      throw new UsageError(`--default-model ${defaultModel} is none of the models: ${names.join(', ')}`);
    }
    return localUp(values['data-dir'] ? resolve(values['data-dir']) : DEFAULT_DATA_DIR, models, {
      ...tuning,
      gpuWorker: values['gpu-worker'] === true,
      ...(defaultModel ? { defaultModel } : {}),
    });
  }
  if (sub === 'run') {
    if (values['gpu-worker']) throw new UsageError('--gpu-worker is for "local up"');
    if (models.length > 1 || values['default-model'] !== undefined) {
      throw new UsageError('"local run" labels with one model: give --model once');
    }
    const modelDir = models[0]?.dir ?? resolveModelDir(undefined);
    const folder = rest[0];
    if (!folder || rest.length > 1) throw new UsageError('"local run" takes exactly one folder');
    const timeoutMs = positiveInt(values.timeout, '--timeout', 600) * 1000;
    return localRun(resolve(folder), modelDir, values.expect, timeoutMs, tuning);
  }
  throw new UsageError(`unknown subcommand "local ${sub}"`);
}

type Tuning = { intraOpThreads: number; concurrency: number };

/** `--model [<name>=]<dir|name>`: a folder or model name, named in the stack by `<name>`. */
function localModelOption(value: string): LocalModel {
  const named = /^([a-z0-9][a-z0-9-]{0,39})=(.+)$/.exec(value);
  if (!named && /^[^/=]+=/.test(value)) {
    throw new UsageError(
      `--model ${value}: a model's name in the stack is lower case letters, digits and dashes (${MODEL_NAME_IN_STACK.source})`,
    );
  }
  return named
    ? { name: named[1] as string, dir: resolveModelDir(named[2]) }
    : { dir: resolveModelDir(value) };
}

async function localUp(
  dataDir: string,
  models: readonly LocalModel[],
  options: Tuning & { gpuWorker: boolean; defaultModel?: string },
): Promise<number> {
  const dbDir = join(dataDir, 'dynamodb');
  // A file, a folder it may not write, or one that cannot be created: one coded line.
  await prepareDataDir(dataDir, dbDir);
  const lock = await lockDataDir(dataDir);
  try {
    await waitForEarlierDynamoDb(dataDir);
    const keptState = (await readdir(dbDir)).length > 0;
    // With --gpu-worker the GPU worker's entry point (CPU provider) serves the bulk queue, so
    // `jobs start --target gpu` works here; it exits with this process, however that ends.
    // Off by default: it loads a second copy of the model that Lambda-path work never uses.
    const stack = await startLocalStack({ dataDir: dbDir, models, ...options });
    try {
      return await serve(stack, dataDir, keptState);
    } finally {
      await removeEndpoints(dataDir);
      await stack.stop();
    }
  } finally {
    await lock.release();
  }
}

async function serve(stack: LocalStack, dataDir: string, keptState: boolean): Promise<number> {
  const defaultModel = defaultModelOf(stack.models);
  // Listening before endpoints.json exists: whoever finds the stack through it can stop it.
  const stopped = new Promise<'signal' | LabelerError>((done) => {
    process.once('SIGINT', () => done('signal'));
    process.once('SIGTERM', () => done('signal'));
    void stack.failed.then(done);
  });
  process.stdout.write(
    [
      'Labeler local stack is up (Ctrl-C stops it).',
      `  S3 and SQS  ${stack.endpoints.s3}`,
      `  DynamoDB    ${stack.endpoints.dynamodb}`,
      `  query API   ${stack.endpoints.queryApi} (SigV4, service execute-api, as on AWS)`,
      `  upload to   s3://${stack.names.imagesBucket}/${UPLOAD_FILTER.prefix}...`,
      `  models      ${describeModels(stack.models)}: uploads get ${defaultModel.name}`,
      `  results     table ${stack.names.resultsTable}, s3://${stack.names.resultsBucket}/results/`,
      `  state       ${dataDir} (DynamoDB only; S3 and SQS live in memory)`,
      ...(keptState
        ? [
            '',
            `DynamoDB state from an earlier run is kept in ${join(dataDir, 'dynamodb')}; S3 objects and`,
            'queued messages of that run are gone (the emulators keep them in memory):',
            're-upload what has no result.',
          ]
        : []),
      '',
      'For the AWS CLI or any SDK (the SQS emulator speaks only the JSON protocol, as',
      'current AWS CLIs and SDKs do):',
      shellEnvironment(stack),
      `  aws s3 cp photo.jpg s3://${stack.names.imagesBucket}/${UPLOAD_FILTER.prefix}photo.jpg`,
      '',
      'Try: labeler query label Sneaker --min-score 0.5',
      '',
    ].join('\n'),
  );
  // Last: a client that finds endpoints.json finds the stack announced and serving.
  await writeEndpoints(dataDir, {
    region: stack.region,
    endpoints: stack.endpoints,
    names: stack.names,
    readableBuckets: stack.readableBuckets.filter((b) => b !== stack.names.imagesBucket),
    models: stack.models,
    ...(stack.gpuWorker ? { gpuWorker: 'cpu' as const } : {}),
    pid: process.pid,
    ...(stack.dynamoDbPid ? { dynamoDbPid: stack.dynamoDbPid } : {}),
  });
  stack.onReport((report, event) => {
    const line = batchLogLine(report, event);
    if (line) process.stderr.write(`${line}\n`);
  });
  // The page reads the stack as `labeler ui` would, through endpoints.json; loaded only here,
  // so `local run` never bundles it. Without it the stack still serves everything else.
  const ui = await import('./results-page.ts')
    .then(({ serveUi }) =>
      serveUi({ 'data-dir': dataDir, ...(defaultModel.dir ? { model: defaultModel.dir } : {}) }),
    )
    .catch((error: unknown) => {
      process.stderr.write(`the results page could not start: ${errorMessage(error)}\n`);
      return undefined;
    });
  if (ui) process.stdout.write(`Results page: ${ui.url}\n`);
  const reason = await stopped;
  await ui?.close();
  if (reason instanceof LabelerError) throw reason;
  const queued = await queueDepth(stack);
  process.stderr.write(
    `stopping: ${queued ? describeQueued(queued) : 'the incoming queue could not be read'}\n`,
  );
  return 0;
}

/**
 * A killed `local up` leaves its DynamoDB Local for a moment: the JVM notices its parent is
 * gone and exits on its own. Starting another on the same files before then would share them.
 */
async function waitForEarlierDynamoDb(dataDir: string): Promise<void> {
  const earlier = await readFile(join(dataDir, 'endpoints.json'), 'utf8')
    .then((text) => (JSON.parse(text) as { dynamoDbPid?: number }).dynamoDbPid)
    .catch(() => undefined);
  if (earlier === undefined) return;
  const deadline = Date.now() + 60_000;
  while (processAlive(earlier) && isDynamoDbLocal(earlier)) {
    if (Date.now() > deadline) {
      throw new LabelerError(
        CODE.local.alreadyRunning,
        `DynamoDB Local of an earlier run (pid ${earlier}) still uses ${dataDir}; stop it first`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await rm(join(dataDir, 'endpoints.json'), { force: true });
}

/** Whether the pid is still DynamoDB Local, not a process that reused its number. */
function isDynamoDbLocal(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('DynamoDbLocalLoopback');
  } catch {
    // No /proc (macOS): the pid alone has to do.
    return process.platform !== 'linux';
  }
}

/** Messages of the incoming queue that no result reflects yet: waiting, and in flight. */
async function queueDepth(stack: LocalStack): Promise<{ waiting: number; inFlight: number } | undefined> {
  try {
    const { Attributes: a = {} } = await stack.clients.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: stack.queues.incoming.url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return {
      waiting: Number(a.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  } catch {
    return undefined;
  }
}

function describeQueued(q: { waiting: number; inFlight: number }): string {
  const total = q.waiting + q.inFlight;
  return total === 0
    ? 'no messages pending in the incoming queue'
    : `${total} messages pending in the incoming queue (${q.waiting} waiting, ${q.inFlight} in flight) ` +
        'are dropped with the in-memory queue; re-upload their images';
}

const LOGGED_KEYS = 3;

/**
 * One stderr line per classify invocation that handled images, naming the first few object
 * keys; batches with none (the s3:TestEvent) are not worth a line.
 */
export function batchLogLine(report: BatchReport, event: SQSEvent): string | undefined {
  if (report.counts.images === 0) return undefined;
  const keys: string[] = [];
  for (const record of event.Records) {
    const parsed = parseS3EventBody(record.body);
    if (parsed.kind === 'objects') keys.push(...parsed.objects.map((o) => o.key));
  }
  const shown = keys.slice(0, LOGGED_KEYS).join(', ');
  const more = keys.length > LOGGED_KEYS ? ` +${keys.length - LOGGED_KEYS} more` : '';
  const c = report.counts;
  return (
    `batch: ${c.labeled} labeled, ${c.failed} failed, ${c.duplicates} duplicates, ${c.retried} retried` +
    `${c.superseded > 0 ? `, ${c.superseded} superseded` : ''}: ${shown}${more}`
  );
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
  const bundle = await loadModelBundle(modelDir);
  const model = { id: bundle.manifest.id, version: bundle.manifest.version };

  // Ctrl-C stops waiting, not the process: the rows so far are printed and the stack stopped.
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const bootStarted = performance.now();
    const stack = await startLocalStack({ modelDir, ...tuning });
    const bootSeconds = (performance.now() - bootStarted) / 1000;
    try {
      const run = { stack, folder, model, expected, timeoutMs, bootSeconds, signal: interrupt.signal };
      return await Promise.race([
        runThroughStack(run),
        stack.failed.then((error) => {
          interrupt.abort();
          throw error;
        }),
      ]);
    } finally {
      await stack.stop();
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

interface Run {
  readonly stack: LocalStack;
  readonly folder: string;
  readonly model: { id: string; version: string };
  readonly expected: Map<string, string> | undefined;
  readonly timeoutMs: number;
  readonly bootSeconds: number;
  readonly signal: AbortSignal;
}

/** `labeler upload --wait` against the stack this process started, with the stack's own counters. */
async function runThroughStack(run: Run): Promise<number> {
  const { stack, model } = run;
  const totals = { duplicates: 0, retried: 0, invocations: 0 };
  const stageMs = { s3Get: 0, decode: 0, inference: 0, writes: 0, export: 0 };
  stack.onReport((r: BatchReport) => {
    totals.duplicates += r.counts.duplicates;
    totals.retried += r.counts.retried;
    totals.invocations++;
    for (const k of Object.keys(stageMs) as Array<keyof typeof stageMs>) stageMs[k] += r.stageMs[k];
  });
  const cpuBefore = process.cpuUsage();
  // The handler runs in execution environments (child processes), DynamoDB Local in Java:
  // each is counted on its own, so the emulators' share (which AWS does not bill to the
  // function) can be told from the handler's.
  const handlerPids = stack.environments?.pids ?? [];
  const handlerCpuBefore = await cpuSecondsOf(handlerPids);
  const dynamoCpuBefore = await cpuSecondsOf([stack.dynamoDbPid]);
  const started = performance.now();
  const report = await runUpload(connectionTo(stack), {
    paths: [run.folder],
    prefix: UPLOAD_FILTER.prefix,
    signal: run.signal,
    wait: { model, timeoutMs: run.timeoutMs, ...(run.expected ? { expected: run.expected } : {}) },
    onListed: (files) =>
      process.stderr.write(
        `stack up in ${run.bootSeconds.toFixed(1)} s; uploading ${files} files (Ctrl-C stops and prints what is done)\n`,
      ),
  });
  const wallSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const handlerCpu = (await cpuSecondsOf(handlerPids)) - handlerCpuBefore;
  const dynamoCpu = (await cpuSecondsOf([stack.dynamoDbPid])) - dynamoCpuBefore;
  const stackCpu = (cpu.user + cpu.system) / 1e6;

  const { ok, failed, pending } = report.results ?? { ok: 0, failed: 0, pending: [] };
  const summary = {
    files: report.paths,
    ok,
    failed,
    pending: pending.length,
    duplicates: totals.duplicates,
    retried: totals.retried,
    invocations: totals.invocations,
    imagesPerSecond: report.paths / wallSeconds,
    wallSeconds,
    bootSeconds: run.bootSeconds,
    cpuSeconds: stackCpu + handlerCpu + dynamoCpu,
    /** The handler's processes; the emulators: S3, SQS and the glue in this process, DynamoDB Local. */
    cpuSecondsBy: { handler: handlerCpu, s3SqsAndGlue: stackCpu, dynamoDbLocal: dynamoCpu },
    stageSeconds: Object.fromEntries(Object.entries(stageMs).map(([k, v]) => [k, v / 1000])),
  };
  process.stderr.write(
    `${report.paths} files through S3 → SQS → classify → DynamoDB + S3: ${ok} ok, ${failed} failed, ` +
      `${pending.length} pending, ${totals.duplicates} duplicates; ` +
      `${summary.imagesPerSecond.toFixed(1)} images/s, wall ${wallSeconds.toFixed(2)} s ` +
      `(stack boot ${run.bootSeconds.toFixed(1)} s), model ${model.id}\n`,
  );
  process.stderr.write(`summary ${JSON.stringify(summary)}\n`);
  if (pending.length === 0) return 0;
  const first = pending.slice(0, 3).join(', ');
  if (run.signal.aborted) {
    const queued = await queueDepth(stack);
    process.stderr.write(
      `interrupted: ${pending.length} of ${report.files} files still pending (first: ${first})` +
        `${queued ? `; ${describeQueued(queued)}` : ''}\n`,
    );
    return 130;
  }
  throw new LabelerError(
    CODE.pipeline.timeout,
    `${pending.length} of ${report.files} files have no result after ${Math.round(run.timeoutMs / 1000)} s ` +
      `(first: ${first}); check the dead-letter queue`,
  );
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
