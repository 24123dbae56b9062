import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import type { AwsClients } from '../../shared/aws/clients.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import type { BatchReport } from '../../shared/labeling/classify-records.ts';
import type { ImageResult } from '../../shared/labeling/results.ts';
import { solidImage } from '../helpers/images.ts';
import { waitFor } from '../helpers/wait.ts';

const DEADLINE_MS = 120_000;
const bucket = 'labeler-images';

/** What S3 answers for each injected key: the emulator enforces no IAM, storage class or KMS. */
const REFUSALS: Record<string, { name: string; status: number }> = {
  'images/denied.png': { name: 'AccessDenied', status: 403 },
  'datasets/denied/2.png': { name: 'AccessDenied', status: 403 },
  'images/archived.png': { name: 'InvalidObjectState', status: 403 },
  'images/skewed.png': { name: 'RequestTimeTooSkewed', status: 403 },
};

/**
 * Refusals S3 gives to a GetObject that no retry can turn into a success become a failed
 * result with their own code on the first receive: never five receives and the dead-letter
 * queue. The faults are injected through the handler's SDK middleware (test-only: the
 * emulator enforces no permissions); a clock-skew 403 stays transient.
 */
describe('permanent S3 refusals on reading an image (injected through SDK middleware)', () => {
  let stack: LocalStack;
  let results: DynamoResultsStore;
  const reads = new Map<string, number>();
  let skewed = true;
  const reports: BatchReport[] = [];

  before(async () => {
    stack = await startLocalStack({
      isolation: 'in-process',
      // A returned message would come back within the test; none must.
      visibilityTimeoutSeconds: 2,
      log: { info: () => {}, warn: () => {}, error: () => {} },
      configureHandlerClients: (clients: AwsClients) => {
        clients.s3.middlewareStack.add(
          (next) => async (args) => {
            const key = (args.input as { Key?: string }).Key ?? '';
            const refusal = REFUSALS[key];
            if (refusal && (args.input as { Bucket?: string }).Bucket === bucket) {
              reads.set(key, (reads.get(key) ?? 0) + 1);
              if (key !== 'images/skewed.png' || skewed) {
                throw Object.assign(new Error(refusal.name), {
                  name: refusal.name,
                  $metadata: { httpStatusCode: refusal.status },
                });
              }
            }
            return next(args);
          },
          { step: 'initialize', name: 'injectS3Refusal' },
        );
      },
    });
    stack.onReport((report) => reports.push(report));
    results = new DynamoResultsStore(stack.clients.db, stack.names.resultsTable);
  });
  after(async () => {
    await stack?.stop();
  });

  const put = async (key: string, shade: number) => {
    const body = await solidImage(32, 32 + shade, `#${shade}0${shade}0a0`)
      .png()
      .toBuffer();
    await stack.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  };
  const resultOf = (key: string) =>
    waitFor(
      `a result for ${key}`,
      async (): Promise<ImageResult | undefined> => (await results.getByImage(bucket, key))[0],
      DEADLINE_MS,
    );
  const depth = async (url: string) => {
    const a = await stack.clients.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(a.Attributes?.ApproximateNumberOfMessages ?? 0) +
      Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
    );
  };

  it('an upload whose read is denied is a failed result object/access-denied after one read', async () => {
    await put('images/denied.png', 1);
    const result = await resultOf('images/denied.png');
    assert.equal(result.status, 'failed');
    assert.equal(result.error?.code, 'object/access-denied');
    assert.match(result.error?.message ?? '', /images\/denied\.png.*denied/);
    assert.equal(reads.get('images/denied.png'), 1, 'read once: the message was consumed, not returned');
  });

  it('an archived object is a failed result object/archived after one read', async () => {
    await put('images/archived.png', 2);
    const result = await resultOf('images/archived.png');
    assert.equal(result.status, 'failed');
    assert.equal(result.error?.code, 'object/archived');
    assert.equal(reads.get('images/archived.png'), 1);
  });

  it('a job image outside images/ whose read is denied is a failed row; the job finishes', async () => {
    for (let i = 0; i < 4; i++) await put(`datasets/denied/${i}.png`, 3 + i);
    const { jobId } = await stack.jobs.start({
      bucket,
      prefix: 'datasets/denied/',
      target: 'lambda',
      mode: 'all',
    });
    const job = await waitFor(
      'the job finished',
      async () => {
        const j = await stack.jobs.get(jobId);
        return j && j.status !== 'planning' && j.status !== 'running' ? j : undefined;
      },
      DEADLINE_MS,
    );
    assert.deepEqual(
      { status: job.status, total: job.total, labeled: job.labeled, failed: job.failed },
      { status: 'succeeded', total: 4, labeled: 3, failed: 1 },
    );
    const failures = [];
    for await (const f of stack.jobs.failures(jobId)) failures.push(f);
    assert.deepEqual(
      failures.map((f) => [f.key, f.error.code]),
      [['datasets/denied/2.png', 'object/access-denied']],
    );
    assert.equal(reads.get('datasets/denied/2.png'), 1);
  });

  it('a clock-skew 403 is transient: the message comes back and the image is labeled', async () => {
    await put('images/skewed.png', 8);
    await waitFor(
      'a first refused read',
      async () => ((reads.get('images/skewed.png') ?? 0) >= 1 ? true : undefined),
      DEADLINE_MS,
    );
    skewed = false;
    const result = await resultOf('images/skewed.png');
    assert.equal(result.status, 'ok');
    assert.ok((reads.get('images/skewed.png') ?? 0) >= 2, 'read again after the message came back');
  });

  it('nothing reached a dead-letter queue', async () => {
    for (const q of Object.values(stack.queues))
      if (q.url.endsWith('-dlq')) assert.equal(await depth(q.url), 0, q.url);
    assert.ok(reports.every((r) => r.counts.invalid === 0));
  });
});
