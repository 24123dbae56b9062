import { resolve } from 'node:path';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { findRunningStack } from '../local/endpoints.ts';
import { type AwsClients, createAwsClients } from '../shared/aws/clients.ts';
import { createJobsService } from '../shared/aws/jobs-service.ts';
import { DynamoSchedules } from '../shared/aws/schedules-local.ts';
import { SchedulerSchedules } from '../shared/aws/schedules-scheduler.ts';
import { readStackOutputs } from '../shared/aws/stack-outputs.ts';
import { LabelerError } from '../shared/errors.ts';
import type { Job, JobMode, JobsService, JobTarget } from '../shared/labeling/jobs.ts';
import type { ModelRef } from '../shared/labeling/results.ts';
import { ScheduleError, type SchedulesPort, validateSchedule } from '../shared/labeling/schedules.ts';
import { readManifest } from '../shared/model/manifest.ts';
import { resolveModelDir } from '../shared/model/model-store.ts';
import { RESOURCE_NAMES } from '../shared/settings.ts';
import { oneOf, parse, UsageError } from './args.ts';
import { DEFAULT_DATA_DIR } from './local-command.ts';

const WHERE = `Where:
  --stack <name>     a deployed stack (its CloudFormation outputs name the
                     queues and tables; AWS credentials and region from the
                     usual AWS_* variables, or --region)
  --region <r>       the deployed stack's region
  --data-dir <dir>   without --stack: the local stack's state folder
                     ("labeler local up"; default .labeler)
  --model <dir|name> the model whose results jobs write (default: the bundled one)`;

const SUBCOMMAND_HELP = {
  start: `Usage: labeler jobs start --prefix <p> [--bucket <b>] [--target lambda|gpu]
                          [--mode all|stale] [--wait] [--format text|json]

Starts a labeling job over every object under s3://<bucket>/<prefix> and prints
its job id on stdout (with --format json: the job as one JSON object, and with
--wait a second one when it has finished).

  --prefix <p>       key prefix to label ("" for the whole bucket; required)
  --bucket <b>       bucket (default: the stack's images bucket)
  --target <t>       lambda: the classify function (default); gpu: the GPU workers
  --mode <m>         stale: skip objects this model already labeled (default);
                     all: label every object again
  --wait             wait until every object is accounted for; a progress bar
                     (done/total, images/s, ETA) on a terminal. Exit 0 when the job
                     succeeded (failed images included), 1 if it failed or was cancelled`,
  status: `Usage: labeler jobs status <job-id> [--format text|json]

The job's status and counts: total, labeled, failed, skipped, cancelled.`,
  list: `Usage: labeler jobs list [--limit <n>] [--format text|json]

Jobs, newest first (json: one object per line).`,
  cancel: `Usage: labeler jobs cancel <job-id>

Stops a planning or running job: objects not labeled yet are counted as cancelled.`,
  failures: `Usage: labeler jobs failures <job-id>

One JSON line per image the job could not label: bucket, key, error code and message.`,
  schedule: `Usage: labeler jobs schedule add <name> --expression <e> --prefix <p>
                                  [--bucket <b>] [--target lambda|gpu]
                                  [--mode all|stale] [--timezone <zone>]
       labeler jobs schedule list [--format text|json]
       labeler jobs schedule remove <name>

Recurring jobs. <e> is an EventBridge Scheduler expression:
  rate(<n> minute|minutes|hour|hours|day|days)        e.g. rate(6 hours)
  cron(<min> <hour> <day-of-month> <month> <day-of-week> <year>)
      one of the two day fields must be "?"; days of the week 1-7 = SUN-SAT
      e.g. cron(0 2 * * ? *) = every day at 02:00 in --timezone (default UTC)
Each firing starts one job, keyed <name>@<scheduled time>. On a deployed stack the
schedule lives in EventBridge Scheduler; locally the running stack fires it.`,
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
  schedule add|list|remove        recurring jobs

Also: labeler query job <job-id> prints one JSON line per image of a job.

${WHERE}

Exit status: 0 on success, 1 when the stack cannot be read or a job failed or was
cancelled (start --wait), 2 for a usage error.
Run "labeler jobs <command> --help" for a command's options.`;

const OPTIONS = {
  prefix: { type: 'string' },
  bucket: { type: 'string' },
  target: { type: 'string' },
  mode: { type: 'string' },
  wait: { type: 'boolean' },
  format: { type: 'string' },
  limit: { type: 'string' },
  expression: { type: 'string' },
  timezone: { type: 'string' },
  stack: { type: 'string' },
  region: { type: 'string' },
  'data-dir': { type: 'string' },
  model: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parse<typeof OPTIONS>>['values'];

/** Which options each subcommand takes; any other is a usage error rather than silently ignored. */
const ALLOWED: Record<string, readonly (keyof Values)[]> = {
  start: ['prefix', 'bucket', 'target', 'mode', 'wait', 'format'],
  status: ['format'],
  list: ['format', 'limit'],
  cancel: ['format'],
  failures: [],
  'schedule add': ['expression', 'prefix', 'bucket', 'target', 'mode', 'timezone'],
  'schedule list': ['format'],
  'schedule remove': [],
};
const COMMON: readonly (keyof Values)[] = ['stack', 'region', 'data-dir', 'model', 'help'];

export async function jobsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS);
  const [sub, ...args] = positionals;
  if (sub === undefined) {
    process.stdout.write(`${JOBS_HELP}\n`);
    return values.help ? 0 : 2;
  }
  if (!(sub in SUBCOMMAND_HELP)) throw new UsageError(`unknown jobs command "${sub}"`);
  const help = SUBCOMMAND_HELP[sub as keyof typeof SUBCOMMAND_HELP];
  if (values.help) {
    process.stdout.write(`${help}\n\n${WHERE}\n`);
    return 0;
  }
  const name = sub === 'schedule' ? `schedule ${args.shift() ?? ''}`.trim() : sub;
  const allowed = ALLOWED[name];
  if (!allowed)
    throw new UsageError(
      `unknown schedule command "${name.slice('schedule '.length)}"; use add, list or remove`,
    );
  for (const option of Object.keys(values) as (keyof Values)[]) {
    if (!allowed.includes(option) && !COMMON.includes(option)) {
      throw new UsageError(`"jobs ${name}" does not take --${option}`);
    }
  }
  const format = oneOf(values.format, '--format', ['text', 'json'] as const, 'text');

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
  switch (name) {
    case 'start': {
      expectArgs(0, '');
      if (values.prefix === undefined)
        throw new UsageError('"jobs start" needs --prefix (use --prefix "" for a whole bucket)');
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
      scheduleFrom(values, args[0], values.bucket ?? RESOURCE_NAMES.imagesBucket);
      break;
    case 'schedule remove':
      expectArgs(1, '<name>');
      break;
  }
  const target = oneOf(values.target, '--target', ['lambda', 'gpu'] as const, 'lambda') satisfies JobTarget;
  const mode = oneOf(values.mode, '--mode', ['all', 'stale'] as const, 'stale') satisfies JobMode;
  const limit = values.limit === undefined ? undefined : positiveLimit(values.limit);

  const connection = await connect(values);
  try {
    const { jobs } = connection;
    switch (name) {
      case 'start': {
        const job = await jobs
          .start({
            bucket: values.bucket ?? connection.imagesBucket,
            prefix: values.prefix ?? '',
            target,
            mode,
          })
          .catch(asUsage('job/invalid-request'));
        process.stdout.write(format === 'json' ? `${JSON.stringify(printedJob(job))}\n` : `${job.jobId}\n`);
        if (!values.wait) return 0;
        const finished = await waitForJob(jobs, job.jobId);
        if (format === 'json') process.stdout.write(`${JSON.stringify(printedJob(finished))}\n`);
        process.stderr.write(`${summary(finished)}\n`);
        return finished.status === 'succeeded' ? 0 : 1;
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
        const spec = scheduleFrom(values, args[0], values.bucket ?? connection.imagesBucket);
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
          };
          process.stdout.write(
            format === 'json'
              ? `${JSON.stringify(printed)}\n`
              : `${scheduleName}\t${expression}\t${printed.timezone}\ts3://${bucket}/${prefix}\t${s.target}\t${s.mode}\n`,
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
    }
    return 2;
  } finally {
    connection.close();
  }
}

function scheduleFrom(values: Values, name: string | undefined, bucket: string) {
  try {
    return validateSchedule({
      name,
      expression: values.expression,
      timezone: values.timezone,
      bucket,
      prefix: values.prefix,
      target: values.target ?? 'lambda',
      mode: values.mode ?? 'stale',
    });
  } catch (error) {
    if (error instanceof ScheduleError) throw new UsageError(error.message);
    throw error;
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

/** The service refuses a request the user typed: that is a usage error, with its code. */
function asUsage(code: string) {
  return (error: unknown): never => {
    if (error instanceof LabelerError && error.code === code)
      throw new UsageError(`[${code}] ${error.message}`);
    throw error;
  };
}

async function mustGet(jobs: JobsService, jobId: string): Promise<Job> {
  const job = await jobs.get(jobId);
  if (!job) throw new LabelerError('job/not-found', `no job ${jobId}`);
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
    planningDone: job.planningDone,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    finishedAt: job.finishedAt ?? null,
    ...(job.scheduleName ? { scheduleName: job.scheduleName } : {}),
    ...(job.error ? { error: job.error } : {}),
  };
}

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

function accounted(job: Job): number {
  return job.labeled + job.failed + job.skipped + job.cancelled;
}

function jobLine(job: Job): string {
  return `${job.jobId}\t${job.status}\t${accounted(job)}/${job.planningDone ? job.total : '?'}\ts3://${job.bucket}/${job.prefix}\t${job.createdAt}`;
}

function describeJob(job: Job): string {
  return [
    `job       ${job.jobId}`,
    `status    ${job.status}${job.planningDone ? '' : ' (listing objects)'}`,
    `objects   s3://${job.bucket}/${job.prefix} -> ${job.target}, mode ${job.mode}`,
    `model     ${job.model.id}@${job.model.version}`,
    `total     ${job.total}${job.planningDone ? '' : ' so far'}`,
    `labeled   ${job.labeled}`,
    `failed    ${job.failed}`,
    `skipped   ${job.skipped}`,
    `cancelled ${job.cancelled}`,
    `created   ${job.createdAt}`,
    `finished  ${job.finishedAt ?? '-'}`,
    ...(job.scheduleName ? [`schedule  ${job.scheduleName}`] : []),
    ...(job.error ? [`error     [${job.error.code}] ${job.error.message}`] : []),
  ].join('\n');
}

function summary(job: Job): string {
  return `job ${job.jobId} ${job.status}: ${job.labeled} labeled, ${job.failed} failed, ${job.skipped} skipped, ${job.cancelled} cancelled of ${job.total}`;
}

/** Polls the job until it finishes, drawing done/total, images/s and ETA on a terminal. */
async function waitForJob(
  jobs: JobsService,
  jobId: string,
  stream: NodeJS.WriteStream = process.stderr,
): Promise<Job> {
  const started = Date.now();
  const tty = Boolean(stream.isTTY);
  let startDone: number | undefined;
  for (;;) {
    const job = await mustGet(jobs, jobId);
    const done = accounted(job);
    if (tty) {
      startDone ??= done;
      const seconds = (Date.now() - started) / 1000;
      const rate = seconds > 0 ? (done - startDone) / seconds : 0;
      const total = job.planningDone ? job.total : undefined;
      const width = 30;
      const filled = total ? Math.min(width, Math.round((done / total) * width)) : 0;
      const eta = total && rate > 0 ? formatDuration((total - done) / rate) : '--';
      stream.write(
        `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total ?? '?'}` +
          ` failed ${job.failed}  ${rate.toFixed(1)} img/s  ETA ${eta} `,
      );
    }
    if (FINISHED.has(job.status)) {
      if (tty) stream.write('\n');
      return job;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
    : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

export interface JobsConnection {
  readonly jobs: JobsService;
  readonly imagesBucket: string;
  schedules(): SchedulesPort;
  close(): void;
}

/**
 * The jobs of the local stack (found through its data dir, as `labeler query` does) or,
 * with --stack, of a deployed stack whose CloudFormation outputs name its resources.
 */
export async function connect(values: {
  stack?: string;
  region?: string;
  'data-dir'?: string;
  model?: string;
}): Promise<JobsConnection> {
  const manifest = await readManifest(resolveModelDir(values.model));
  const model: ModelRef = { id: manifest.id, version: manifest.version };
  if (values.stack !== undefined) {
    const outputs = await readStackOutputs(values.stack, values.region ? { region: values.region } : {});
    const clients = createAwsClients({ region: outputs.region });
    const jobs = createJobsService(
      clients,
      {
        jobsTable: outputs.get('JobsTable'),
        resultsTable: outputs.get('ResultsTable'),
        planQueueUrl: outputs.get('PlanQueueUrl'),
        incomingQueueUrl: outputs.get('IncomingQueueUrl'),
        bulkQueueUrl: outputs.get('BulkQueueUrl'),
      },
      model,
      outputs.region,
    );
    let scheduler: SchedulerClient | undefined;
    return {
      jobs,
      imagesBucket: outputs.get('ImagesBucket'),
      schedules: () => {
        scheduler ??= new SchedulerClient({ region: outputs.region });
        return new SchedulerSchedules(scheduler, {
          scheduleGroup: outputs.get('ScheduleGroupName'),
          schedulerRoleArn: outputs.get('SchedulerRoleArn'),
          planQueueArn: outputs.get('PlanQueueArn'),
          planDlqArn: outputs.get('PlanDlqArn'),
        });
      },
      close: () => {
        destroy(clients);
        scheduler?.destroy();
      },
    };
  }
  if (values.region !== undefined) throw new UsageError('--region goes with --stack');
  const dataDir = values['data-dir'] ? resolve(values['data-dir']) : DEFAULT_DATA_DIR;
  const running = await findRunningStack(dataDir);
  const clients = createAwsClients({ region: running.region, endpoints: running.endpoints, local: true });
  try {
    const url = async (queue: string) =>
      (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: queue }))).QueueUrl ?? '';
    const jobs = createJobsService(
      clients,
      {
        jobsTable: RESOURCE_NAMES.jobsTable,
        resultsTable: RESOURCE_NAMES.resultsTable,
        planQueueUrl: await url(RESOURCE_NAMES.planQueue),
        incomingQueueUrl: await url(RESOURCE_NAMES.incomingQueue),
        bulkQueueUrl: await url(RESOURCE_NAMES.bulkQueue),
      },
      model,
      running.region,
    );
    return {
      jobs,
      imagesBucket: RESOURCE_NAMES.imagesBucket,
      schedules: () => new DynamoSchedules(clients.db),
      close: () => destroy(clients),
    };
  } catch (error) {
    destroy(clients);
    throw error;
  }
}

function destroy(clients: AwsClients): void {
  clients.s3.destroy();
  clients.sqs.destroy();
  clients.dynamo.destroy();
}
