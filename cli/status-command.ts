import {
  countRecentResults,
  type QueueDepth,
  type RecentResults,
  readQueueDepth,
} from '../shared/aws/stack-status.ts';
import { CODE } from '../shared/error-codes.ts';
import { errorMessage, LabelerError } from '../shared/errors.ts';
import { type Job, jobTotalDone } from '../shared/labeling/jobs.ts';
import { oneOf, parse, positiveInt, UsageError } from './args.ts';
import { jobsServiceOf, openStack, STACK_HELP, STACK_OPTIONS, type StackConnection } from './stack.ts';
import { queueName, stackQueues } from './stack-queues.ts';

export const STATUS_HELP = `Usage: labeler status [--minutes <n>] [--format text|json] [--stack <s>]

One screen on a stack's state:
  queues    messages waiting, in flight and delayed in the incoming, jobs, bulk
            and plan queues and their dead-letter queues (a stack hosting several
            models: each one's as jobs:<model>, bulk:<model>). The age of the oldest
            message is not shown: SQS does not return it; on AWS it is the
            CloudWatch metric AWS/SQS ApproximateAgeOfOldestMessage (the stack's
            alarms watch it), which this command does not read.
  results   results written in the last --minutes, counted from the JSON Lines
            export in the results bucket (one object per batch; this day's and,
            across midnight, the day before's objects are listed, never the
            results table). Up to 50 recent batch objects are read and their
            lines counted; beyond that the count is estimated from their size
            (marked "≈"). A day with more than 20,000 batches is listed only in
            part (marked "at least"). On AWS the CloudWatch metrics
            Labeler/ImagesLabeled and ImagesFailed give the same, per minute.
  jobs      planning and running jobs with their progress (accounted/total).

Options:
  --minutes <n>   the results window (default 5)
  --format <f>    text (default) or json (one object)
  -h, --help      show this help

${STACK_HELP}

Exit status: 0 when the stack was read (a part that could not be read is shown as
unavailable, with its error code), 1 when the stack cannot be reached, 2 for a
usage error.`;

type Part<T> = { ok: true; value: T } | { ok: false; error: { code: string; message: string } };

export interface StackStatus {
  readonly stack: string;
  readonly kind: 'local' | 'deployed';
  readonly at: string;
  readonly queues: Record<string, Part<QueueDepth & { oldestMessageAgeSeconds: null }>>;
  readonly results: Part<RecentResults & { minutes: number }>;
  readonly jobs: Part<ReadonlyArray<ActiveJob>>;
}

interface ActiveJob {
  readonly jobId: string;
  readonly status: string;
  readonly prefix: string;
  readonly bucket: string;
  readonly total?: number;
  readonly done: number;
  readonly labeled: number;
  readonly failed: number;
  readonly createdAt: string;
  readonly imagesPerSecond: number;
}

export async function statusCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    minutes: { type: 'string' },
    format: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    ...STACK_OPTIONS,
  });
  if (values.help) {
    process.stdout.write(`${STATUS_HELP}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`status takes no arguments, got "${positionals[0]}"`);
  const format = oneOf(values.format, '--format', ['text', 'json'], 'text');
  const minutes = positiveInt(values.minutes, '--minutes', 5);
  const stack = await openStack(values);
  try {
    const status = await readStatus(stack, minutes);
    process.stdout.write(format === 'json' ? `${JSON.stringify(status)}\n` : renderStatus(status));
    return 0;
  } finally {
    stack.close();
  }
}

export async function readStatus(
  stack: StackConnection,
  minutes: number,
  now = new Date(),
): Promise<StackStatus> {
  // Every model's jobs and bulk queues: `jobs:<model>` where the stack hosts several.
  const queueEntries = await Promise.all(
    stackQueues(stack.resources).map(async ({ role, url }) => {
      const depth = await part(() => readQueueDepth(stack.clients.sqs, url));
      const withAge = depth.ok
        ? { ok: true as const, value: { ...depth.value, oldestMessageAgeSeconds: null } }
        : depth;
      return [role, withAge] as const;
    }),
  );
  const since = new Date(now.getTime() - minutes * 60_000);
  const results = await part(async () => ({
    minutes,
    ...(await countRecentResults(stack.clients.s3, stack.resources.resultsBucket, { since, now })),
  }));
  const jobs = await part(async () => {
    const service = jobsServiceOf(stack);
    const listed = await service.list({ limit: 50 });
    return listed
      .filter((j) => j.status === 'planning' || j.status === 'running' || j.status === 'cancelling')
      .map((j) => activeJob(j, now));
  });
  return {
    stack: stack.name,
    kind: stack.kind,
    at: now.toISOString(),
    queues: Object.fromEntries(queueEntries),
    results,
    jobs,
  };
}

function activeJob(job: Job, now: Date): ActiveJob {
  const done = jobTotalDone(job);
  const seconds = (now.getTime() - Date.parse(job.createdAt)) / 1000;
  return {
    jobId: job.jobId,
    status: job.status,
    bucket: job.bucket,
    prefix: job.prefix,
    ...(job.planningDone ? { total: job.total } : {}),
    done,
    labeled: job.labeled,
    failed: job.failed,
    createdAt: job.createdAt,
    imagesPerSecond: seconds > 0 ? Math.round((done / seconds) * 10) / 10 : 0,
  };
}

async function part<T>(read: () => Promise<T>): Promise<Part<T>> {
  try {
    return { ok: true, value: await read() };
  } catch (error) {
    const code = error instanceof LabelerError ? error.code : CODE.aws.requestFailed;
    return { ok: false, error: { code, message: errorMessage(error) } };
  }
}

export function renderStatus(s: StackStatus): string {
  const queues = Object.entries(s.queues).map(([role, q]) => ({ name: queueName(role), q }));
  // A model's name widens the column only where the stack hosts several.
  const width = Math.max(15, ...queues.map(({ name }) => name.length));
  const lines = [
    `stack ${s.stack} (${s.kind}) at ${s.at}`,
    '',
    `${'queue'.padEnd(width + 2)}waiting  in flight  delayed`,
  ];
  for (const { name, q } of queues) {
    lines.push(
      q.ok
        ? `${name.padEnd(width)} ${String(q.value.visible).padStart(8)} ${String(q.value.inFlight).padStart(10)} ${String(q.value.delayed).padStart(8)}`
        : `${name.padEnd(width)} unavailable [${q.error.code}] ${q.error.message}`,
    );
  }
  lines.push(
    'oldest-message age: not available from SQS (CloudWatch AWS/SQS ApproximateAgeOfOldestMessage on AWS)',
    '',
  );
  if (s.results.ok) {
    const r = s.results.value;
    const n = `${r.truncated ? 'at least ' : ''}${r.estimated ? '≈' : ''}${r.results}`;
    const split = r.ok !== undefined ? ` (${r.ok} ok, ${r.failed} failed)` : '';
    lines.push(`results in the last ${r.minutes} min: ${n}${split} in ${r.batches} batches`);
  } else {
    lines.push(`results: unavailable [${s.results.error.code}] ${s.results.error.message}`);
  }
  lines.push('');
  if (!s.jobs.ok) {
    lines.push(`jobs: unavailable [${s.jobs.error.code}] ${s.jobs.error.message}`);
  } else if (s.jobs.value.length === 0) {
    lines.push('jobs: none planning or running');
  } else {
    lines.push('running jobs:');
    for (const j of s.jobs.value) {
      const of = j.total !== undefined ? `${j.done}/${j.total}` : `${j.done}/? (planning)`;
      const percent = j.total ? ` ${Math.floor((100 * j.done) / j.total)} %` : '';
      lines.push(
        `  ${j.jobId}  ${j.status}  ${of}${percent}  failed ${j.failed}  ${j.imagesPerSecond} img/s  s3://${j.bucket}/${j.prefix}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
