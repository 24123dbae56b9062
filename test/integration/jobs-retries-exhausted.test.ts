import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import type { AwsClients } from '../../shared/aws/clients.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import { RETRIES_EXHAUSTED } from '../../shared/labeling/classify-records.ts';
import type { Job, JobFailure } from '../../shared/labeling/jobs.ts';
import { solidImage } from '../helpers/images.ts';
import { waitFor } from '../helpers/wait.ts';

/** Redelivery is the subject: a short visibility timeout brings failed messages back soon. */
const VISIBILITY_SECONDS = 3;
const MAX_RECEIVE_COUNT = 3;
const DEADLINE_MS = 300_000;
const bucket = 'labeler-images';
const prefix = 'datasets/flaky/';
const flakyKey = `${prefix}3.png`;

/**
 * An image whose message ends in the dead-letter queue still gets an outcome: on its last
 * receive the job records it failed (`queue/retries-exhausted`), so the job finishes, and
 * the message still lands in the DLQ. A redrive labels the image without counting it twice.
 */
describe('labeling jobs: a message that runs out of receives (decision 0014)', () => {
  let stack: LocalStack;
  let faulty = true;
  let flakyReads = 0;

  before(async () => {
    stack = await startLocalStack({
      isolation: 'in-process',
      visibilityTimeoutSeconds: VISIBILITY_SECONDS,
      maxReceiveCount: MAX_RECEIVE_COUNT,
      log: { info: () => {}, warn: () => {}, error: () => {} },
      configureHandlerClients: (clients: AwsClients) => {
        clients.s3.middlewareStack.add(
          (next) => async (args) => {
            const input = args.input as { Key?: string };
            if (input.Key === flakyKey) {
              flakyReads++;
              if (faulty) {
                throw Object.assign(new Error('Please reduce your request rate.'), {
                  name: 'SlowDown',
                  $metadata: { httpStatusCode: 503 },
                });
              }
            }
            return next(args);
          },
          { step: 'initialize', name: 'injectS3Unavailable' },
        );
      },
    });
  });
  after(async () => {
    await stack?.stop();
  });

  const jobOf = (jobId: string) =>
    waitFor(
      `job ${jobId} finished`,
      async () => {
        const job = await stack.jobs.get(jobId);
        return job && job.status !== 'planning' && job.status !== 'running' ? job : undefined;
      },
      DEADLINE_MS,
    );
  const counts = (job: Job) => ({
    status: job.status,
    total: job.total,
    labeled: job.labeled,
    failed: job.failed,
    skipped: job.skipped,
    cancelled: job.cancelled,
  });
  const failuresOf = async (jobId: string) => {
    const failures: JobFailure[] = [];
    for await (const f of stack.jobs.failures(jobId)) failures.push(f);
    return failures;
  };
  const dlqDepth = async () => {
    const attrs = await stack.clients.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: stack.queues.jobsDlq.url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(attrs.Attributes?.ApproximateNumberOfMessages ?? 0) +
      Number(attrs.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
    );
  };

  let jobId = '';

  it('a job image failing transiently on every receive (injected) is recorded failed; the job finishes', async () => {
    for (let i = 0; i < 6; i++) {
      const body = await solidImage(40, 30 + i, `#${i}0${i}0a0`)
        .png()
        .toBuffer();
      await stack.clients.s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: `${prefix}${i}.png`, Body: body }),
      );
    }
    const started = await stack.jobs.start({ bucket, prefix, target: 'lambda', mode: 'all' });
    jobId = started.jobId;
    const job = await jobOf(jobId);
    assert.deepEqual(counts(job), {
      status: 'succeeded',
      total: 6,
      labeled: 5,
      failed: 1,
      skipped: 0,
      cancelled: 0,
    });
    // Retried through the queue; under load a receive can overlap a slow invocation (visibility
    // 3 s), so "once per receive" would measure the machine, not the code.
    assert.ok(flakyReads >= 2, `tried again after a receive (${flakyReads} reads)`);

    const failures = await failuresOf(jobId);
    assert.equal(failures.length, 1);
    assert.equal(failures[0]?.key, flakyKey);
    assert.equal(failures[0]?.error.code, RETRIES_EXHAUSTED);
    assert.match(failures[0]?.error.message ?? '', /aws\/throttled/, 'the last error is the reason');
  });

  it('the message still lands in the dead-letter queue', async () => {
    await waitFor(
      'the message in the DLQ',
      async () => ((await dlqDepth()) === 1 ? true : undefined),
      DEADLINE_MS,
    );
  });

  it('a redrive labels the image and counts nothing a second time', async () => {
    faulty = false;
    const received = await stack.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: stack.queues.jobsDlq.url,
        MaxNumberOfMessages: 1,
        WaitTimeSeconds: 5,
      }),
    );
    const message = received.Messages?.[0];
    if (!message?.Body) assert.fail('no message in the DLQ');
    assert.ok(
      message.Body.includes(flakyKey) && message.Body.includes(jobId),
      'the job message with the image',
    );
    await stack.clients.sqs.send(
      new SendMessageCommand({ QueueUrl: stack.queues.jobs.url, MessageBody: message.Body }),
    );
    await stack.clients.sqs.send(
      new DeleteMessageCommand({
        QueueUrl: stack.queues.jobsDlq.url,
        ReceiptHandle: message.ReceiptHandle,
      }),
    );

    const results = new DynamoResultsStore(stack.clients.db, stack.names.resultsTable);
    const [result] = await waitFor(
      'the redriven image labeled',
      async () => {
        const found = await results.getByImage(bucket, flakyKey);
        return found.length > 0 ? found : undefined;
      },
      DEADLINE_MS,
    );
    assert.equal(result?.status, 'ok');
    assert.equal(result?.jobId, jobId);

    const job = await stack.jobs.get(jobId);
    assert.ok(job);
    assert.deepEqual(counts(job), {
      status: 'succeeded',
      total: 6,
      labeled: 5,
      failed: 1,
      skipped: 0,
      cancelled: 0,
    });
    assert.equal((await failuresOf(jobId)).length, 1, 'one outcome per (job, image)');
    assert.equal(await dlqDepth(), 0);
  });
});
