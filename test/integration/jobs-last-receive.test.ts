import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { createClassifyDeps } from '../../shared/aws/classify-handler.ts';
import { DynamoJobsStore } from '../../shared/aws/dynamo-jobs-store.ts';
import { TransientError } from '../../shared/errors.ts';
import {
  type ClassifyDeps,
  classifyRecords,
  type QueueRecord,
  RETRIES_EXHAUSTED,
} from '../../shared/labeling/classify-records.ts';
import type { JobFailure } from '../../shared/labeling/jobs.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { s3EventBody } from '../helpers/events.ts';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const MAX = 3;

/**
 * classifyRecords on the real emulators and model, with S3 reads failing (injected): a
 * job image is recorded failed only on its message's last receive, once, and the message
 * is reported failed every time so that it reaches the dead-letter queue.
 */
describe('classifyRecords: the last receive of a job message (decision 0014)', () => {
  let stack: LocalStack;
  let deps: ClassifyDeps;
  let store: DynamoJobsStore;
  let jobId: string;
  let eTag: string;
  let size: number;
  const bucket = 'labeler-images';
  const keys = ['last-receive/a.png', 'last-receive/b.png'];
  const failingKey = keys[1] as string;

  before(async () => {
    stack = await startLocalStack({ worker: false, planner: false, log: quiet });
    const body = await readFile(join(DEFAULT_MODEL_DIR, 'samples', 'test-00000.png'));
    size = body.length;
    for (const key of keys) {
      const put = await stack.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      eTag = (put.ETag ?? '').replace(/"/g, '');
    }
    const real = await createClassifyDeps(
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
        maxReceiveCount: MAX,
      },
      stack.clients,
      quiet,
    );
    deps = {
      ...real,
      images: {
        get: (ref) =>
          ref.key === failingKey
            ? Promise.reject(
                new TransientError('aws/unavailable', 'S3 GetObject failed with HTTP 503 (injected)'),
              )
            : real.images.get(ref),
      },
    };
    store = new DynamoJobsStore(stack.clients.db, stack.names.jobsTable);
    const { id, version } = real.labeler.classifier.manifest;
    const created = await store.create(
      { bucket, prefix: 'last-receive/', target: 'lambda', mode: 'all' },
      { id, version },
    );
    jobId = created.record.jobId;
    // Planning done with both images: the job finishes once both have an outcome.
    await store.recordPlanned(jobId, 0, keys.length, true);
  });
  after(async () => {
    await deps?.labeler.classifier.release();
    await stack?.stop();
  });

  /** One job message with both images, as plan-job writes it, received `count` times. */
  const received = (count: number, options: { messageId?: string; job?: string } = {}): QueueRecord => {
    const records = keys.map((key) => JSON.parse(s3EventBody({ bucket, key, eTag, size })).Records[0]);
    return {
      messageId: options.messageId ?? 'm-1',
      body: JSON.stringify({ Records: records, labelerJobId: options.job ?? jobId }),
      attributes: { ApproximateReceiveCount: String(count) },
    };
  };
  const failures = async (id: string) => {
    const out: JobFailure[] = [];
    for await (const m of store.markers(id))
      if (m.outcome === 'failed') out.push({ ...m, error: m.error ?? { code: '', message: '' } });
    return out;
  };

  it('before the last receive: the message goes back, the image has no outcome yet', async () => {
    for (const count of [1, MAX - 1]) {
      const report = await classifyRecords([received(count)], deps);
      assert.deepEqual(report.failedMessageIds, ['m-1']);
    }
    const job = await store.get(jobId);
    assert.deepEqual([job?.status, job?.labeled, job?.failed], ['running', 1, 0]);
    assert.deepEqual(await failures(jobId), []);
  });

  it('on the last receive: recorded failed with the last error, the message still reported failed', async () => {
    const report = await classifyRecords([received(MAX)], deps);
    assert.deepEqual(report.failedMessageIds, ['m-1'], 'so that it lands in the dead-letter queue');
    const job = await store.get(jobId);
    assert.deepEqual([job?.status, job?.labeled, job?.failed], ['succeeded', 1, 1]);
    const [failure, ...more] = await failures(jobId);
    assert.deepEqual(more, []);
    assert.equal(failure?.key, failingKey);
    assert.equal(failure?.error.code, RETRIES_EXHAUSTED);
    assert.match(failure?.error.message ?? '', /after 3 receives.*aws\/unavailable.*HTTP 503/);
  });

  it('a duplicate of the last receive (or a redrive still failing) counts nothing again', async () => {
    const report = await classifyRecords([received(MAX + 2, { messageId: 'm-2' })], deps);
    assert.deepEqual(report.failedMessageIds, ['m-2']);
    const job = await store.get(jobId);
    assert.deepEqual([job?.labeled, job?.failed, job?.total], [1, 1, 2]);
    assert.equal((await failures(jobId)).length, 1);
  });

  it('without maxReceiveCount (no queue limit known) nothing is recorded on any receive', async () => {
    const { id, version } = deps.labeler.classifier.manifest;
    const other = await store.create(
      { bucket, prefix: 'last-receive/', target: 'lambda', mode: 'all', idempotencyKey: 'no-max' },
      { id, version },
    );
    await store.recordPlanned(other.record.jobId, 0, keys.length, true);
    const { maxReceiveCount: _max, ...unbounded } = deps;
    const report = await classifyRecords([received(100, { job: other.record.jobId })], unbounded);
    assert.deepEqual(report.failedMessageIds, ['m-1']);
    assert.equal((await store.get(other.record.jobId))?.failed, 0);
  });
});
