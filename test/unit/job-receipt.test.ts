import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  jobReceipt,
  PRICES,
  REKOGNITION_PER_THOUSAND,
  SERVICE_PRICES,
} from '../../shared/labeling/cost-model.ts';
import type { Job } from '../../shared/labeling/jobs.ts';
import { CLASSIFY } from '../../shared/settings.ts';

const job: Job = {
  jobId: 'j-1',
  status: 'succeeded',
  bucket: 'b',
  prefix: 'p/',
  target: 'lambda',
  mode: 'all',
  model: { id: 'm', version: '1' },
  planningDone: true,
  createdAt: '2026-12-06T00:00:00.000Z',
  updatedAt: '2026-12-06T00:00:40.000Z',
  finishedAt: '2026-12-06T00:00:40.000Z',
  total: 1000,
  labeled: 990,
  failed: 5,
  skipped: 5,
  cancelled: 0,
  usage: {
    invocations: 100,
    computeMs: 200_000,
    s3Gets: 995,
    s3Puts: 100,
    sqsRequests: 200,
    dynamoWriteUnits: 3_500,
    dynamoReadUnits: 1_200,
  },
};

const close = (actual: number, expected: number, what: string) =>
  assert.ok(
    Math.abs(actual - expected) <= 1e-12 + Math.abs(expected) * 1e-9,
    `${what}: ${actual} vs ${expected}`,
  );

describe('a finished job’s receipt (decision 0035): its counted usage at list prices', () => {
  it('prices Lambda GB-seconds and requests, DynamoDB units, S3 and SQS requests, per 1,000 next to Rekognition', () => {
    const r = jobReceipt(job);
    assert.ok(r);
    assert.deepEqual(r.images, { total: 1000, labeled: 990, failed: 5, skipped: 5, cancelled: 0 });
    assert.equal(r.wallSeconds, 40);
    close(r.imagesPerSecond, 995 / 40, 'images through the model per second');
    assert.equal(r.computeSeconds, 200);
    close(r.lambdaGbSeconds ?? 0, 200 * (CLASSIFY.memoryMb / 1024), 'GB-seconds');
    close(
      r.dollars.compute,
      200 * (CLASSIFY.memoryMb / 1024) * PRICES.lambda.x86PerGbSecond +
        (100 * PRICES.lambda.perMillionRequests) / 1e6,
      'compute',
    );
    close(
      r.dollars.dynamodb,
      (3_500 * SERVICE_PRICES.dynamoWriteUnit + 1_200 * SERVICE_PRICES.dynamoReadUnit) / 1e6,
      'DynamoDB',
    );
    close(r.dollars.s3, (995 * SERVICE_PRICES.s3Get + 100 * SERVICE_PRICES.s3Put) / 1e6, 'S3');
    close(r.dollars.sqs, (200 * SERVICE_PRICES.sqsRequest) / 1e6, 'SQS');
    close(r.dollars.total, r.dollars.compute + r.dollars.dynamodb + r.dollars.s3 + r.dollars.sqs, 'total');
    close(r.dollarsPerThousand, (r.dollars.total / 995) * 1000, 'per 1,000 images through the model');
    assert.equal(r.rekognitionPerThousand, REKOGNITION_PER_THOUSAND);
    assert.ok(r.dollarsPerThousand < r.rekognitionPerThousand / 10, 'a small fraction of Rekognition here');
  });

  it('prices a GPU job by instance time, its overlapping batches divided out', () => {
    const r = jobReceipt({ ...job, target: 'gpu' }, { gpuInstanceType: 'g5.xlarge' });
    assert.equal(r?.lambdaGbSeconds, undefined);
    close(
      r?.dollars.compute ?? 0,
      ((200 / 3) * (PRICES.ec2OnDemand['g5.xlarge'] ?? 0)) / 3600,
      'GPU compute',
    );
  });

  it('has none for a job still running or one without counted usage', () => {
    const { finishedAt: _f, ...running } = job;
    assert.equal(jobReceipt({ ...running, status: 'running' }), undefined);
    const { usage: _u, ...before } = job;
    assert.equal(jobReceipt(before), undefined);
  });
});
