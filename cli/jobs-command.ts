import { CODE, type ErrorCode } from '../shared/error-codes.ts';
import { LabelerError } from '../shared/errors.ts';
import { formatDriftTable, readScheduleDrift } from '../shared/labeling/drift.ts';
import { describeEstimate, printedEstimate } from '../shared/labeling/job-estimate.ts';
import { folderPrefix, jobLocation } from '../shared/labeling/job-location.ts';
import type { JobReceipt, LabelSummary } from '../shared/labeling/jobs.ts';
import {
  assertReadableBucket,
  type Job,
  type JobMode,
  type JobsService,
  type JobTarget,
  jobTotalDone,
  TERMINAL_STATUSES,
} from '../shared/labeling/jobs.ts';
import { parseJobRequest } from '../shared/labeling/plan-job.ts';
import { describeSample, parseSample, type SampleSpec, sampleSize } from '../shared/labeling/sample.ts';
import { ScheduleError, validateSchedule } from '../shared/labeling/schedules.ts';
import { DRIFT, RESOURCE_NAMES } from '../shared/settings.ts';
import { oneOf, parse, positiveInt, UsageError } from './args.ts';
import { JobProgress } from './progress.ts';
import { type JobsConnection, openJobs, STACK_HELP, STACK_OPTIONS } from './stack.ts';

/** `jobs start --wait --timeout` ran out with the job still running (as timeout(1) exits). */
export const WAIT_TIMED_OUT = 124;
/** Ctrl-C while waiting: 128 + SIGINT, as a shell reports it. */
const WAIT_INTERRUPTED = 130;

const WHERE = `${STACK_HELP}
  --model <m>        "start": the model the job labels with, one the stack hosts: its
                     name (labeler local up --model, cdk.json "models"), id, id@version
                     or folder (default: the stack's default model, the one uploads get)`;

const SUBCOMMAND_HELP = {
  start: `Usage: labeler jobs start --prefix <p> [--bucket <b>] [--target auto|lambda|gpu]
                          [--mode all|stale] [--sample <n|p%> [--seed <s>]]
                          [--wait [--timeout <s>] | --dry-run] [--format text|json]

Starts a labeling job over every object under s3://<bucket>/<prefix> and prints
its job id on stdout (with --format json: the job as one JSON object, and with
--wait a second one when it has finished).

  --prefix <p>       the folder to label ("" for the whole bucket; required). A
                     prefix names a folder, as in upload: a "/" is added if missing,
                     so datasets/h1 is datasets/h1/ (not datasets/h1gpu/). An
                     s3://<bucket>/<prefix> URL is taken as bucket and prefix. A
                     prefix with no objects is refused (job/no-objects), naming
                     what its parent folder holds
  --bucket <b>       bucket (default: the stack's images bucket)
  --target <t>       auto: the cheaper of the two for this model and job size by the
                     cost model (docs/DEPLOY.md; the default); lambda: the classify
                     function; gpu: the GPU workers
  --mode <m>         stale: skip objects this model version already labeled with
                     the same content (default); all: label every object again,
                     overwriting its result
  --sample <n|p%>    label a deterministic sample of the prefix, spread over the
                     whole listing: exactly <n> objects (the prefix is listed once
                     more at the start to choose them) or about <p>% of them; the
                     same objects every time for the same seed
  --seed <s>         which sample (a whole number; default 0)
  --wait             wait until every object is accounted for; a progress bar
                     (done/total, images/s, ETA) on a terminal. Ctrl-C stops waiting,
                     not the job ("labeler jobs cancel <job-id>" stops the job)
  --timeout <s>      with --wait: stop waiting after <s> seconds (default: wait
                     until the job finishes); the job goes on
  --dry-run          start nothing: count the images (in mode stale, those not yet
                     labeled; past 100,000 objects the counts are lower bounds, "at
                     least") and print, for each target, the all-in cost (compute,
                     DynamoDB, S3, SQS, logs) and the wall time as the stack is
                     configured and at the account's default quotas, and the target
                     auto would choose (with --format json: one JSON object)

Exit status (--wait): 0 when the job succeeded (failed images included: they are
its failed rows), 1 if it failed or was cancelled, ${WAIT_TIMED_OUT} when --timeout passed
with the job still running, 130 on Ctrl-C (the job still running).`,
  status: `Usage: labeler jobs status <job-id> [--format text|json]

The job's status and counts: total, labeled, failed, skipped, cancelled.`,
  list: `Usage: labeler jobs list [--limit <n>] [--format text|json]

Jobs, newest first (json: one object per line).`,
  cancel: `Usage: labeler jobs cancel <job-id>

Stops a planning or running job: planning stops, and objects not labeled yet are
counted as cancelled (those already in flight may still be labeled). The job is
"cancelling" until every object it planned is accounted for, then "cancelled".`,
  failures: `Usage: labeler jobs failures <job-id>

One JSON line per image the job could not label: bucket, key, error code and message.`,
  schedule: `Usage: labeler jobs schedule add <name> --expression <e> --prefix <p>
                                  [--bucket <b>] [--target lambda|gpu]
                                  [--mode all|stale] [--timezone <zone>]
                                  [--sample <n|p%> [--seed <s>]] [--model <name>]
       labeler jobs schedule list [--format text|json]
       labeler jobs schedule remove <name>
       labeler jobs schedule drift <name> [--baseline <job-id>]
                                  [--format table|json] [--limit <n>]

Recurring jobs. <e> is an EventBridge Scheduler expression:
  rate(<n> minute|minutes|hour|hours|day|days)        e.g. rate(6 hours)
  cron(<min> <hour> <day-of-month> <month> <day-of-week> <year>)
      one of the two day fields must be "?"; days of the week 1-7 = SUN-SAT
      e.g. cron(0 2 * * ? *) = every day at 02:00 in --timezone (default UTC)
Each firing starts one job, keyed <name>@<scheduled time>. On a deployed stack the
schedule lives in EventBridge Scheduler; locally the running stack fires it.
--sample labels the same deterministic sample of the prefix each firing (as
"jobs start --sample"; --seed picks another, default 0); --model names the hosted
model each firing's job labels with (its name, id or id@version; default: the
stack's default model).

drift: each run of the schedule (newest last; --limit: the last <n>) against a
baseline, by its top-1 labels: every finished job keeps its top-1 label counts, mean
top-1 score and share of top-1 scores under 0.5. The baseline is the schedule's
first run that finished with labels, or --baseline <job-id> (one of its runs). Per
run: images, mean top-1 score, share under 0.5, the Jensen-Shannon divergence of its
label shares from the baseline's (0 = the same mix, 1 = no label in common) marked
OVER above the threshold (${DRIFT.threshold}), and the labels whose shares moved most;
--format json adds every label's share in both. When a scheduled run finishes, the
stack sends the same divergence as the Labeler/LabelDrift metric (dimension
Schedule), which alarms on a deployed stack for schedules declared in cdk.json.
Errors: schedule/not-found (no schedule nor run of that name),
schedule/no-finished-run, schedule/baseline-not-a-run.`,
} as const;

export const JOBS_HELP = `Usage: labeler jobs <command> [options]

Labeling jobs over an S3 prefix, on demand or on a schedule, on the local stack
("labeler local up") or a deployed one (--stack <name>).

Commands:
  start --prefix <p> [--wait]     start a job; prints its id
  status <job-id>                 status and counts
  list                            jobs, newest first
  cancel <job-id>                 stop a job
  failures <job-id>               the images it could not label, with their codes
  schedule add|list|remove|drift  recurring jobs; drift: each run's top-1 labels vs the first

Also: labeler query job <job-id> prints one JSON line per image of a job.

${WHERE}

Exit status: 0 on success, 1 when the stack cannot be read or a job failed or was
cancelled (start --wait), 2 for a usage error, ${WAIT_TIMED_OUT} when start --wait --timeout
ran out with the job still running, 130 on Ctrl-C during start --wait.
Run "labeler jobs <command> --help" for a command's options.`;

const OPTIONS = {
  prefix: { type: 'string' },
  bucket: { type: 'string' },
  target: { type: 'string' },
  mode: { type: 'string' },
  wait: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  sample: { type: 'string' },
  seed: { type: 'string' },
  timeout: { type: 'string' },
  format: { type: 'string' },
  limit: { type: 'string' },
  expression: { type: 'string' },
  timezone: { type: 'string' },
  baseline: { type: 'string' },
  ...STACK_OPTIONS,
  model: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parse<typeof OPTIONS>>['values'];

/** Which options each subcommand takes; any other is a usage error rather than silently ignored. */
const ALLOWED: Record<string, readonly (keyof Values)[]> = {
  start: ['prefix', 'bucket', 'target', 'mode', 'sample', 'seed', 'wait', 'timeout', 'format', 'dry-run'],
  status: ['format'],
  list: ['format', 'limit'],
  cancel: ['format'],
  failures: [],
  'schedule add': ['expression', 'prefix', 'bucket', 'target', 'mode', 'timezone', 'sample', 'seed'],
  'schedule list': ['format'],
  'schedule remove': [],
  'schedule drift': ['baseline', 'format', 'limit'],
};
const COMMON: readonly (keyof Values)[] = ['stack', 'region', 'profile', 'data-dir', 'model', 'help'];

export async function jobsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS);
  const [sub, ...args] = positionals;
  if (sub === undefined) {
    process.stdout.write(`${JOBS_HELP}\n`);
    return values.help ? 0 : 2;
  }
  if (!Object.hasOwn(SUBCOMMAND_HELP, sub)) throw new UsageError(`unknown jobs command "${sub}"`);
  const help = SUBCOMMAND_HELP[sub as keyof typeof SUBCOMMAND_HELP];
  if (values.help) {
    process.stdout.write(`${help}\n\n${WHERE}\n`);
    return 0;
  }
  const name = sub === 'schedule' ? `schedule ${args.shift() ?? ''}`.trim() : sub;
  const allowed = ALLOWED[name];
  if (!allowed)
    throw new UsageError(
      `unknown schedule command "${name.slice('schedule '.length)}"; use add, list, remove or drift`,
    );
  for (const option of Object.keys(values) as (keyof Values)[]) {
    if (!allowed.includes(option) && !COMMON.includes(option)) {
      throw new UsageError(`"jobs ${name}" does not take --${option}`);
    }
  }
  // `schedule drift` prints a table (its --format is table|json); the others text|json.
  const format =
    name === 'schedule drift'
      ? oneOf(values.format, '--format', ['table', 'json'] as const, 'table') === 'json'
        ? 'json'
        : 'text'
      : oneOf(values.format, '--format', ['text', 'json'] as const, 'text');

  const expectArgs = (count: number, what: string) => {
    if (args.length !== count) {
      throw new UsageError(
        count === 0
          ? `"jobs ${name}" takes no arguments, got ${args.map((a) => JSON.stringify(a)).join(' ')}`
          : `"jobs ${name}" takes exactly one ${what}`,
      );
    }
    return args[0] as string;
  };

  // Checked before connecting, so a usage error never waits on a stack.
  let sample: SampleSpec | undefined;
  switch (name) {
    case 'start': {
      expectArgs(0, '');
      if (values.prefix === undefined)
        throw new UsageError('"jobs start" needs --prefix (use --prefix "" for a whole bucket)');
      if (values.timeout !== undefined && !values.wait) throw new UsageError('--timeout goes with --wait');
      if (values['dry-run'] && values.wait) throw new UsageError('--dry-run starts no job to wait for');
      if (values.seed !== undefined && values.sample === undefined)
        throw new UsageError('--seed goes with --sample');
      if (values.sample !== undefined) sample = parseSample(values.sample, values.seed);
      locationOf(values, RESOURCE_NAMES.imagesBucket);
      break;
    }
    case 'status':
    case 'cancel':
    case 'failures':
      checkJobId(expectArgs(1, '<job-id>'));
      break;
    case 'list':
    case 'schedule list':
      expectArgs(0, '');
      break;
    case 'schedule add':
      expectArgs(1, '<name>');
      if (values.expression === undefined) throw new UsageError('"jobs schedule add" needs --expression');
      if (values.prefix === undefined) throw new UsageError('"jobs schedule add" needs --prefix');
      // The stack's bucket is known only once connected; any valid name checks the rest now.
      if (values.seed !== undefined && values.sample === undefined)
        throw new UsageError('--seed goes with --sample');
      scheduleFrom(values, args[0], locationOf(values, RESOURCE_NAMES.imagesBucket));
      break;
    case 'schedule remove':
    case 'schedule drift':
      expectArgs(1, '<name>');
      if (values.baseline !== undefined) checkJobId(values.baseline);
      break;
  }
  const target = oneOf(values.target, '--target', ['lambda', 'gpu', 'auto'] as const, 'auto');
  const mode = oneOf(values.mode, '--mode', ['all', 'stale'] as const, 'stale') satisfies JobMode;
  const limit = values.limit === undefined ? undefined : positiveLimit(values.limit);
  const timeoutSeconds =
    values.timeout === undefined ? undefined : positiveInt(values.timeout, '--timeout', 1);

  const connection = await openJobs(values);
  try {
    const { jobs } = connection;
    switch (name) {
      case 'start': {
        const { bucket, prefix } = locationOf(values, connection.imagesBucket);
        readable(bucket, connection);
        // A prefix with nothing under it (a typo) is said, with what is there, not run as a job of 0.
        await connection.assertHasObjects(bucket, prefix);
        if (values['dry-run']) {
          const estimate = await connection.estimate(bucket, prefix, mode, sample);
          process.stdout.write(
            format === 'json'
              ? `${JSON.stringify(printedEstimate(estimate))}\n`
              : `${describeEstimate(estimate)}\n`,
          );
          return 0;
        }
        const auto =
          target === 'auto' ? await connection.autoTarget(bucket, prefix, mode, sample) : undefined;
        if (auto) process.stderr.write(`target ${auto.target} (auto): ${auto.reason}\n`);
        const job = await jobs
          .start({
            bucket,
            prefix,
            target: auto ? auto.target : (target as JobTarget),
            ...(auto ? { targetReason: auto.reason } : {}),
            mode,
            ...(sample ? { sample } : {}),
            model: connection.model.name,
          })
          .catch(asUsage(CODE.job.invalidRequest));
        process.stdout.write(format === 'json' ? `${JSON.stringify(printedJob(job))}\n` : `${job.jobId}\n`);
        if (!values.wait) return 0;
        const waited = await waitWithSignals(jobs, job.jobId, timeoutSeconds);
        const last = waited.job;
        if (format === 'json') process.stdout.write(`${JSON.stringify(printedJob(last))}\n`);
        if (waited.end !== 'finished') {
          const why =
            waited.end === 'timeout'
              ? `--timeout ${timeoutSeconds} s passed`
              : 'interrupted: stopped waiting';
          process.stderr.write(
            `${why}; job ${last.jobId} is still ${last.status} (${jobTotalDone(last)}/${last.planningDone ? last.total : '?'} done) ` +
              `and goes on without this command. "labeler jobs status ${last.jobId}" shows it, ` +
              `"labeler jobs cancel ${last.jobId}" stops it.\n`,
          );
          return waited.end === 'timeout' ? WAIT_TIMED_OUT : WAIT_INTERRUPTED;
        }
        process.stderr.write(`${summary(last)}\n`);
        return last.status === 'succeeded' ? 0 : 1;
      }
      case 'status': {
        const job = await mustGet(jobs, args[0] as string);
        process.stdout.write(
          format === 'json' ? `${JSON.stringify(printedJob(job))}\n` : `${describeJob(job)}\n`,
        );
        return 0;
      }
      case 'list': {
        const list = await jobs.list(limit === undefined ? {} : { limit });
        if (format === 'json') {
          for (const job of list) process.stdout.write(`${JSON.stringify(printedJob(job))}\n`);
        } else {
          for (const job of list) process.stdout.write(`${jobLine(job)}\n`);
          if (list.length === 0) process.stderr.write('no jobs\n');
        }
        return 0;
      }
      case 'cancel': {
        const job = await jobs.cancel(args[0] as string);
        process.stdout.write(
          format === 'json' ? `${JSON.stringify(printedJob(job))}\n` : `${jobLine(job)}\n`,
        );
        return 0;
      }
      case 'failures': {
        await mustGet(jobs, args[0] as string);
        let count = 0;
        for await (const failure of jobs.failures(args[0] as string)) {
          count++;
          process.stdout.write(`${JSON.stringify(failure)}\n`);
        }
        if (count === 0) process.stderr.write('no failed images\n');
        return 0;
      }
      case 'schedule add': {
        const spec = scheduleFrom(values, args[0], locationOf(values, connection.imagesBucket));
        readable(spec.bucket, connection);
        await connection.schedules().add(spec);
        process.stderr.write(`schedule ${spec.name} added: ${spec.expression} ${spec.timezone ?? 'UTC'}\n`);
        return 0;
      }
      case 'schedule list': {
        const list = await connection.schedules().list();
        for (const s of list) {
          const { name: scheduleName, expression, timezone, bucket, prefix } = s;
          const printed = {
            name: scheduleName,
            expression,
            timezone: timezone ?? 'UTC',
            bucket,
            prefix,
            target: s.target,
            mode: s.mode,
            ...(s.sample ? { sample: { size: sampleSize(s.sample), seed: s.sample.seed } } : {}),
            ...(s.model ? { model: s.model } : {}),
          };
          const extra = [
            ...(s.sample ? [`sample ${sampleSize(s.sample)} seed ${s.sample.seed}`] : []),
            ...(s.model ? [`model ${s.model}`] : []),
          ];
          process.stdout.write(
            format === 'json'
              ? `${JSON.stringify(printed)}\n`
              : `${[scheduleName, expression, printed.timezone, `s3://${bucket}/${prefix}`, s.target, s.mode, ...extra].join('\t')}\n`,
          );
        }
        if (list.length === 0) process.stderr.write('no schedules\n');
        return 0;
      }
      case 'schedule remove': {
        await connection.schedules().remove(args[0] as string);
        process.stderr.write(`schedule ${args[0]} removed\n`);
        return 0;
      }
      case 'schedule drift': {
        const schedule = args[0] as string;
        const report = await readScheduleDrift(
          {
            list: (options) => jobs.list(options),
            ...(jobs.scheduleBaseline
              ? { scheduleBaseline: (s: string) => jobs.scheduleBaseline?.(s) ?? Promise.resolve(undefined) }
              : {}),
            scheduleExists: async (s) => (await connection.schedules().list()).some((x) => x.name === s),
          },
          schedule,
          {
            ...(values.baseline === undefined ? {} : { baseline: values.baseline }),
            ...(limit === undefined ? {} : { limit }),
          },
        );
        process.stdout.write(
          format === 'json' ? `${JSON.stringify(report)}\n` : `${formatDriftTable(report)}\n`,
        );
        return 0;
      }
    }
    return 2;
  } finally {
    connection.close();
  }
}

function scheduleFrom(
  values: Values,
  name: string | undefined,
  { bucket, prefix }: { bucket: string; prefix: string },
) {
  try {
    return validateSchedule({
      name,
      expression: values.expression,
      timezone: values.timezone,
      bucket,
      prefix,
      target: values.target ?? 'lambda',
      mode: values.mode ?? 'stale',
      ...(values.sample === undefined ? {} : { sample: parseSample(values.sample, values.seed) }),
      ...(values.model === undefined ? {} : { model: values.model }),
    });
  } catch (error) {
    if (error instanceof ScheduleError) throw new UsageError(error.message);
    throw error;
  }
}

/**
 * Where `jobs start` and `schedule add` read, from --bucket and --prefix as typed: an
 * s3://bucket/prefix URL is split into the two, and the prefix names a folder (a "/" is
 * added, as upload does). A conflict is a usage error with its code.
 */
function locationOf(values: Values, defaultBucket: string): { bucket: string; prefix: string } {
  try {
    const { bucket, prefix } = jobLocation(
      { bucket: values.bucket, prefix: values.prefix ?? '' },
      defaultBucket,
    );
    return { bucket, prefix: folderPrefix(prefix) };
  } catch (error) {
    return asUsage(CODE.job.invalidRequest)(error);
  }
}

/** A job id goes into a DynamoDB key and a terminal line: printable, bounded. */
function checkJobId(id: string): void {
  if (!/^[A-Za-z0-9._:@-]{1,128}$/.test(id)) {
    throw new UsageError(`"${id}" is not a job id (letters, digits and . _ : @ -, at most 128)`);
  }
}

function positiveLimit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0 || n > 1000) {
    throw new UsageError(`--limit must be an integer from 1 to 1000, got "${value}"`);
  }
  return n;
}

/**
 * A bucket the stack cannot read is refused before anything is listed or planned, exit 2
 * (a malformed name is job/invalid-request first).
 */
function readable(bucket: string, connection: JobsConnection): void {
  try {
    parseJobRequest({ bucket, prefix: '' });
    assertReadableBucket(bucket, connection.readableBuckets);
  } catch (error) {
    if (
      error instanceof LabelerError &&
      (error.code === CODE.job.invalidRequest || error.code === CODE.job.bucketNotReadable)
    )
      throw new UsageError(`[${error.code}] ${error.message}`);
    throw error;
  }
}

/** The service refuses a request the user typed: that is a usage error, with its code. */
function asUsage(code: ErrorCode) {
  return (error: unknown): never => {
    if (error instanceof LabelerError && error.code === code)
      throw new UsageError(`[${code}] ${error.message}`);
    throw error;
  };
}

async function mustGet(jobs: JobsService, jobId: string): Promise<Job> {
  const job = await jobs.get(jobId);
  if (!job) throw new LabelerError(CODE.job.notFound, `no job ${jobId}`);
  return job;
}

/** The `--format json` shape of a job: the contract's fields, stable for scripts. */
export function printedJob(job: Job): Record<string, unknown> {
  return {
    jobId: job.jobId,
    status: job.status,
    total: job.total,
    labeled: job.labeled,
    failed: job.failed,
    skipped: job.skipped,
    cancelled: job.cancelled,
    bucket: job.bucket,
    prefix: job.prefix,
    target: job.target,
    mode: job.mode,
    model: `${job.model.id}@${job.model.version}`,
    ...(job.model.name ? { modelName: job.model.name } : {}),
    planningDone: job.planningDone,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    finishedAt: job.finishedAt ?? null,
    ...(job.scheduleName ? { scheduleName: job.scheduleName } : {}),
    ...(job.targetReason ? { targetReason: job.targetReason } : {}),
    ...(job.sample ? { sample: { size: sampleSize(job.sample), seed: job.sample.seed } } : {}),
    ...(job.error ? { error: job.error } : {}),
    ...(job.receipt ? { receipt: job.receipt } : {}),
    ...(job.labelSummary ? { labelSummary: job.labelSummary } : {}),
  };
}

/** `cancelling` is not finished: a cancelled job ends once its counts add up to its total. */
const FINISHED: ReadonlySet<string> = TERMINAL_STATUSES;

function jobLine(job: Job): string {
  return `${job.jobId}\t${job.status}\t${jobTotalDone(job)}/${job.planningDone ? job.total : '?'}\ts3://${job.bucket}/${job.prefix}\t${job.createdAt}`;
}

function describeJob(job: Job): string {
  return [
    `job       ${job.jobId}`,
    `status    ${job.status}${job.planningDone ? '' : ' (listing objects)'}`,
    `objects   s3://${job.bucket}/${job.prefix} -> ${job.target}, mode ${job.mode}`,
    `model     ${job.model.name ? `${job.model.name} (${job.model.id}@${job.model.version})` : `${job.model.id}@${job.model.version}`}`,
    ...(job.sample ? [`sample    ${describeSample(job.sample)}`] : []),
    `total     ${job.total}${job.planningDone ? '' : ' so far'}`,
    `labeled   ${job.labeled}`,
    `failed    ${job.failed}`,
    `skipped   ${job.skipped}`,
    `cancelled ${job.cancelled}`,
    `created   ${job.createdAt}`,
    `finished  ${job.finishedAt ?? '-'}`,
    ...(job.scheduleName ? [`schedule  ${job.scheduleName}`] : []),
    ...(job.targetReason ? [`why       ${job.targetReason}`] : []),
    ...(job.error ? [`error     [${job.error.code}] ${job.error.message}`] : []),
    ...(job.labelSummary ? labelLines(job.labelSummary) : []),
    ...(job.receipt ? receiptLines(job.receipt) : []),
  ].join('\n');
}

/** A finished job's top-1 labels (decision 0039): the most frequent first, then its score summary. */
function labelLines(summary: LabelSummary, shown = 5): string[] {
  const byCount = Object.entries(summary.top1).sort(([a, m], [b, n]) => n - m || (a < b ? -1 : 1));
  const share = (n: number) => `${((n / summary.images) * 100).toFixed(1)}%`;
  const listed = byCount
    .slice(0, shown)
    .map(([label, n]) => `${label} ${n} (${share(n)})`)
    .join(', ');
  const rest = byCount.length > shown ? `, ${byCount.length - shown} more (--format json lists all)` : '';
  return [
    `top-1     ${listed}${rest}`,
    `scores    mean top-1 ${summary.meanTop1Score.toFixed(3)}, ${(summary.shareUnderHalf * 100).toFixed(1)}% under 0.5 (${summary.images} images labeled ok)`,
  ];
}

/** A finished job's receipt (decision 0035), as `jobs status` prints it. */
function receiptLines(r: JobReceipt): string[] {
  const n = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(1));
  const usd = (x: number) => `$${x < 0.01 ? x.toFixed(6) : x.toFixed(4)}`;
  const through = r.images.labeled + r.images.failed;
  return [
    `receipt   ${through} images through the model in ${r.wallSeconds.toFixed(1)} s (${r.imagesPerSecond.toFixed(2)} images/s)`,
    `          compute ${r.computeSeconds.toFixed(1)} s${r.lambdaGbSeconds === undefined ? ' (GPU batches)' : ` (${r.lambdaGbSeconds.toFixed(1)} Lambda GB-s)`}` +
      `, DynamoDB ${n(r.dynamoWriteUnits)} write + ${n(r.dynamoReadUnits)} read units` +
      `, S3 ${n(r.s3Requests.get)} GET + ${n(r.s3Requests.put)} PUT, SQS ${n(r.sqsRequests)} requests`,
    `          ${usd(r.dollars.total)} all-in: compute ${usd(r.dollars.compute)}, DynamoDB ${usd(r.dollars.dynamodb)}, S3 ${usd(r.dollars.s3)}, SQS ${usd(r.dollars.sqs)}`,
    `          ${usd(r.dollarsPerThousand)} per 1,000 images (Rekognition list price: $${r.rekognitionPerThousand.toFixed(2)} per 1,000)`,
  ];
}

function summary(job: Job): string {
  const counts = `${job.labeled} labeled, ${job.failed} failed, ${job.skipped} skipped, ${job.cancelled} cancelled of ${job.total}`;
  // A failed job says why, not only its counts ("jobs status" shows the same error).
  const why = job.error ? `\n  [${job.error.code}] ${job.error.message}` : '';
  return `job ${job.jobId} ${job.status}: ${counts}${why}`;
}

type WaitEnd = { end: 'finished' | 'timeout' | 'interrupted'; job: Job };

/**
 * Waits for the job with Ctrl-C and --timeout each ending the wait, never the job: the
 * job runs on the stack, and this command only watches it.
 */
async function waitWithSignals(
  jobs: JobsService,
  jobId: string,
  timeoutSeconds: number | undefined,
): Promise<WaitEnd> {
  const stop = new AbortController();
  let end: WaitEnd['end'] = 'finished';
  const onSignal = () => {
    end = 'interrupted';
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  const timer =
    timeoutSeconds === undefined
      ? undefined
      : setTimeout(() => {
          end = 'timeout';
          stop.abort();
        }, timeoutSeconds * 1000);
  if (process.stderr.isTTY) {
    process.stderr.write(
      `waiting for job ${jobId}; Ctrl-C stops waiting, not the job ("labeler jobs cancel ${jobId}" stops it)\n`,
    );
  }
  try {
    const job = await waitForJob(jobs, jobId, stop.signal);
    return { end: FINISHED.has(job.status) ? 'finished' : end, job };
  } finally {
    process.off('SIGINT', onSignal);
    if (timer) clearTimeout(timer);
  }
}

/**
 * Polls the job until it finishes or `signal` aborts (then returns its last state),
 * drawing done/total, images/s and ETA on a terminal.
 */
async function waitForJob(
  jobs: JobsService,
  jobId: string,
  signal: AbortSignal,
  stream: NodeJS.WriteStream = process.stderr,
): Promise<Job> {
  const progress = new JobProgress(stream);
  for (;;) {
    const job = await mustGet(jobs, jobId);
    progress.show(jobTotalDone(job), job.planningDone ? job.total : undefined, job.failed);
    if (FINISHED.has(job.status) || signal.aborted) {
      progress.finish();
      return job;
    }
    await abortableSleep(500, signal);
    // One more read after an abort, so the state printed is the latest.
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
