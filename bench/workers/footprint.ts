// What one image uses besides compute (issue 22): the whole local stack in this process
// (isolation `in-process`), the real classify handler and the real job path (planner, jobs
// queue, workers), every AWS client of the stack metered (shared/aws/usage-meter.ts:
// DynamoDB capacity from ReturnConsumedCapacity INDEXES, requests by operation), log
// lines counted in bytes. Six phases, each metered alone: upload fresh, duplicate
// delivery (the same S3 events sent again), re-upload (new bytes, same keys); a job over
// images never labeled, and a `stale` job after re-upload. (A job's duplicate delivery
// goes through the same putAll as the upload's; not measured separately here.)
import { readFile } from 'node:fs/promises';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { startLocalStack } from '../../local/stack.ts';
import { createAwsClients } from '../../shared/aws/clients.ts';
import { meterCalls, UsageMeter, type UsageSnapshot } from '../../shared/aws/usage-meter.ts';
import type { ClassifyLog } from '../../shared/labeling/classify-records.ts';
import { mapLimit } from '../../shared/labeling/image-labeler.ts';
import { jobTotalDone } from '../../shared/labeling/jobs.ts';
import { JOBS_TABLE, RESOURCE_NAMES, RESULTS_TABLE, UPLOAD_FILTER } from '../../shared/settings.ts';
import { workerMain } from '../lib/child.ts';

export interface FootprintArgs {
  readonly modelDir: string;
  readonly files: readonly string[];
}

export interface FootprintPhase {
  readonly phase: string;
  readonly images: number;
  readonly usage: UsageSnapshot;
  readonly logBytes: number;
}

export interface FootprintResult {
  readonly resultsTable: string;
  readonly jobsTable: string;
  readonly phases: FootprintPhase[];
}

const ARCHIVE = 'footprint-archive';

async function main(args: FootprintArgs): Promise<FootprintResult> {
  const meter = new UsageMeter({
    [RESOURCE_NAMES.resultsTable]: {
      [RESULTS_TABLE.labelIndex.name]: RESULTS_TABLE.labelIndex.partitionKey,
      [RESULTS_TABLE.rank2Index.name]: RESULTS_TABLE.rank2Index.partitionKey,
    },
    [RESOURCE_NAMES.jobsTable]: { [JOBS_TABLE.listIndex.name]: JOBS_TABLE.listIndex.partitionKey },
  });
  let logBytes = 0;
  const line = (level: string) => (message: string, extra?: Record<string, unknown>) => {
    const text = `${JSON.stringify({ level, message, ...extra })}\n`;
    logBytes += Buffer.byteLength(text);
    if (level !== 'INFO') process.stderr.write(text);
  };
  const log: ClassifyLog = { info: line('INFO'), warn: line('WARN'), error: line('ERROR') };
  const bodies = { incoming: [] as string[], jobs: [] as string[] };
  let handled = 0;
  const stack = await startLocalStack({
    isolation: 'in-process',
    modelDir: args.modelDir,
    readableBuckets: [ARCHIVE],
    planOptions: { pageSize: 100 },
    log,
    configureHandlerClients: (c) => {
      for (const client of [c.s3, c.sqs, c.dynamo]) meterCalls(client as never, meter);
    },
    wrapHandler: (handler) => async (event) => {
      for (const r of event.Records) {
        (r.body.includes('labelerJobId') ? bodies.jobs : bodies.incoming).push(r.body);
      }
      const response = await handler(event);
      if (process.env.FOOTPRINT_DEBUG)
        process.stderr.write(
          `handled ${event.Records.length} ${JSON.stringify(response)} ${event.Records.map((r) => r.body.slice(0, 300)).join(' | ')}\n`,
        );
      handled += event.Records.length - (response?.batchItemFailures?.length ?? 0);
      return response;
    },
  });
  // The stack's own clients plan jobs and read their state; the bench's uploads are the user's, not metered.
  for (const client of [stack.clients.s3, stack.clients.sqs, stack.clients.dynamo])
    meterCalls(client as never, meter);
  const user = createAwsClients({ region: stack.region, endpoints: stack.endpoints, local: true });
  await user.s3.send(new CreateBucketCommand({ Bucket: ARCHIVE }));
  const n = args.files.length;
  const phases: FootprintPhase[] = [];
  const waitFor = async (what: string, done: () => boolean | Promise<boolean>) => {
    const until = Date.now() + 120_000;
    while (!(await done())) {
      if (Date.now() > until) throw new Error(`footprint: ${what} did not finish (${handled} handled)`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const phase = async (name: string, run: () => Promise<void>) => {
    process.stderr.write(`footprint: ${name}\n`);
    meter.reset();
    logBytes = 0;
    try {
      await run();
    } catch (error) {
      process.stderr.write(`footprint: ${name} left out: ${String(error)}\n`);
      return;
    }
    // The last acknowledgements (DeleteMessageBatch) follow the handler's return.
    await new Promise((r) => setTimeout(r, 1500));
    phases.push({ phase: name, images: n, usage: meter.snapshot(), logBytes });
  };
  const upload = async (bucket: string, prefix: string, flip: boolean) => {
    await mapLimit([...args.files.keys()], 4, async (i) => {
      const bytes = await readFile(args.files[(flip ? i + 1 : i) % n] as string);
      await user.s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `${prefix}${i}.jpg`,
          Body: bytes,
          ContentType: 'image/jpeg',
        }),
      );
    });
  };
  const resend = async (queueUrl: string, sent: string[]) => {
    for (let at = 0; at < sent.length; at += 10) {
      await user.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: sent.slice(at, at + 10).map((body, i) => ({ Id: String(i), MessageBody: body })),
        }),
      );
    }
  };
  const handledAtLeast = async (target: number) => waitFor(`${target} images`, () => handled >= target);
  const job = async (mode: 'all' | 'stale') => {
    const started = await stack.jobs.start({ bucket: ARCHIVE, prefix: 'job/', target: 'lambda', mode });
    await waitFor(`job ${started.jobId}`, async () => {
      const now = await stack.jobs.get(started.jobId);
      return (
        now !== undefined &&
        now.planningDone === true &&
        jobTotalDone(now) >= now.total &&
        now.status !== 'running'
      );
    });
  };

  try {
    let base = 0;
    await phase('upload: fresh', async () => {
      await upload(stack.names.imagesBucket, `${UPLOAD_FILTER.prefix}fp/`, false);
      base += n;
      await handledAtLeast(base + 1);
    });
    const firstEvents = bodies.incoming.splice(0);
    await phase('upload: duplicate delivery', async () => {
      await resend(stack.queues.incoming.url, firstEvents);
      base += n;
      await handledAtLeast(base + 1);
    });
    await phase('upload: re-upload', async () => {
      await upload(stack.names.imagesBucket, `${UPLOAD_FILTER.prefix}fp/`, true);
      base += n;
      await handledAtLeast(base + 1);
    });
    await upload(ARCHIVE, 'job/', false);
    bodies.jobs.splice(0);
    await phase('job: fresh', async () => {
      await job('stale');
    });
    await upload(ARCHIVE, 'job/', true);
    await phase('job: re-upload, stale job', async () => {
      await job('stale');
    });
  } finally {
    await stack.stop();
  }
  return { resultsTable: stack.names.resultsTable, jobsTable: stack.names.jobsTable, phases };
}

await workerMain(main);
