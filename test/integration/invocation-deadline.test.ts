import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, type Message, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import {
  type ClassifyWorker,
  createClassifyDeps,
  makeClassifyHandler,
} from '../../shared/aws/classify-handler.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import { createPlanPorts } from '../../shared/aws/plan-job.ts';
import { type BatchReport, DEADLINE } from '../../shared/labeling/classify-records.ts';
import { planStep, startJob } from '../../shared/labeling/plan-job.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const bucket = 'labeler-images';
const prefix = 'datasets/deadline/';
const IMAGES = 30;
/** The invocation's time runs out after this many image reads have started. */
const READS_IN_TIME = 12;

/**
 * The classify handler with a Lambda context whose remaining time runs out mid-batch, on
 * the real emulators and model: images stop starting, the messages with unstarted images
 * go back as batch item failures, and their redelivery labels the rest. Every image of the
 * job ends labeled exactly once: none lost, none counted twice.
 */
describe('an invocation running out of time (context.getRemainingTimeInMillis)', () => {
  let stack: LocalStack;
  let deps: ClassifyWorker;
  let jobId = '';
  let reads = 0;
  const reports: BatchReport[] = [];
  const messages: Message[] = [];

  before(async () => {
    stack = await startLocalStack({ worker: false, planner: false, log: quiet });
    const samples = (await readdir(join(DEFAULT_MODEL_DIR, 'samples'))).filter((f) => f.endsWith('.png'));
    for (let i = 0; i < IMAGES; i++) {
      const body = await readFile(join(DEFAULT_MODEL_DIR, 'samples', samples[i] as string));
      await stack.clients.s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `${prefix}${String(i).padStart(2, '0')}.png`,
          Body: body,
        }),
      );
    }
    deps = await createClassifyDeps(
      {
        region: stack.region,
        resultsTable: stack.names.resultsTable,
        resultsBucket: stack.names.resultsBucket,
        modelDir: DEFAULT_MODEL_DIR,
        executionProviders: ['cpu'],
        intraOpThreads: 1,
        topK: 3,
        batchSize: 8,
        concurrency: 2,
        maxBytes: 1 << 20,
        maxPixels: 1 << 20,
        jobsTable: stack.names.jobsTable,
        maxReceiveCount: 5,
      },
      stack.clients,
      quiet,
    );
    const get = deps.images.get.bind(deps.images);
    deps = {
      ...deps,
      images: {
        get: (ref) => {
          reads++;
          return get(ref);
        },
      },
    };
    // Plan the job as plan-job does: 10 objects per message on the jobs queue.
    const ports = createPlanPorts(
      stack.clients,
      {
        jobsTable: stack.names.jobsTable,
        planQueueUrl: stack.queues.plan.url,
        models: {
          ...stack.models,
          models: stack.models.models.map((m) => ({ ...m, objectsPerMessage: 10 })),
        },
      },
      stack.region,
    );
    ({ jobId } = await startJob({ bucket, prefix, target: 'lambda', mode: 'all' }, ports));
    const plan = await stack.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: stack.queues.plan.url, WaitTimeSeconds: 2 }),
    );
    await planStep(plan.Messages?.[0]?.Body ?? '', ports, { pageSize: 1000, stepBudgetMs: 60_000 });
    while (messages.length < IMAGES / 10) {
      const got = await stack.clients.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: stack.queues.jobs.url,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 2,
        }),
      );
      messages.push(...(got.Messages ?? []));
    }
    for (const m of messages) {
      await stack.clients.sqs.send(
        new DeleteMessageCommand({ QueueUrl: stack.queues.jobs.url, ReceiptHandle: m.ReceiptHandle }),
      );
    }
  });
  after(async () => {
    await deps?.labeler.classifier.release();
    await stack?.stop();
  });

  const eventOf = (batch: Message[], receive: number): SQSEvent =>
    ({
      Records: batch.map((m) => ({
        messageId: m.MessageId,
        body: m.Body,
        attributes: { ApproximateReceiveCount: String(receive) },
      })),
    }) as unknown as SQSEvent;
  const handler = () => makeClassifyHandler(deps, (report) => reports.push(report));
  const labeledKeys = async () => {
    const store = new DynamoResultsStore(stack.clients.db, stack.names.resultsTable);
    const keys: string[] = [];
    for (let i = 0; i < IMAGES; i++) {
      const key = `${prefix}${String(i).padStart(2, '0')}.png`;
      if ((await store.getByImage(bucket, key)).some((r) => r.status === 'ok')) keys.push(key);
    }
    return keys;
  };

  it('stops starting images when the time left is under the reserve, returning their messages', async () => {
    assert.ok(deps.deadlineReserveMs > 1000, 'the reserve covers more than the second left below');
    const response = await handler()(eventOf(messages, 1), {
      getRemainingTimeInMillis: () => (reads >= READS_IN_TIME ? 1000 : 60_000),
    });
    const report = reports.at(-1);
    assert.ok(report);
    assert.equal(reads, READS_IN_TIME, 'no read started after the time ran short');
    assert.equal(report.counts.labeled, READS_IN_TIME);
    assert.equal(report.counts.deferred, IMAGES - READS_IN_TIME);
    assert.equal(report.counts.retried, 0, 'deferred, not failed');
    // Messages of 10: the first was done whole, the other two hold unstarted images.
    assert.deepEqual(
      response.batchItemFailures.map((f) => f.itemIdentifier),
      messages.slice(1).map((m) => m.MessageId),
    );
    assert.equal((await labeledKeys()).length, READS_IN_TIME, 'what was started was written');
    const job = await stack.jobs.get(jobId);
    assert.equal(job?.status, 'running');
    assert.equal(job?.labeled, READS_IN_TIME);
    const failures = [];
    for await (const f of stack.jobs.failures(jobId)) failures.push(f);
    assert.deepEqual(failures, [], `a deferred image is no failure (${DEADLINE})`);
  });

  it('the returned messages, delivered again with time to spare, label the rest and count nothing twice', async () => {
    const returned = messages.slice(1);
    await handler()(eventOf(returned, 2), { getRemainingTimeInMillis: () => 60_000 });
    const report = reports.at(-1);
    assert.equal(report?.counts.labeled, IMAGES - READS_IN_TIME);
    assert.equal(
      report?.counts.duplicates,
      20 - (IMAGES - READS_IN_TIME),
      'the started ones are not run again',
    );
    assert.equal(report?.counts.inferred, IMAGES - READS_IN_TIME);
    assert.equal((await labeledKeys()).length, IMAGES, 'none lost');
    const job = await stack.jobs.get(jobId);
    assert.deepEqual(
      {
        status: job?.status,
        total: job?.total,
        labeled: job?.labeled,
        skipped: job?.skipped,
        failed: job?.failed,
      },
      { status: 'succeeded', total: IMAGES, labeled: IMAGES, skipped: 0, failed: 0 },
      'each image counted once',
    );
  });
});
