// `jobs start --target auto` against the local emulators: the S3 counter the cost model
// asks for a job's size, and the chosen target's reason stored with the job.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { printedJob } from '../../cli/jobs-command.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { countObjects } from '../../shared/aws/count-objects.ts';
import { createJobsService } from '../../shared/aws/jobs-service.ts';
import { efficientNet, resolveAutoTarget } from '../../shared/labeling/cost-model.ts';
import { mapLimit } from '../../shared/labeling/image-labeler.ts';
import { CLASSIFY } from '../../shared/settings.ts';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

describe('jobs start --target auto (cost model, local emulators)', () => {
  let stack: LocalStack;
  const bucket = 'labeler-images';

  before(async () => {
    stack = await startLocalStack({ worker: false, planner: false, log: quiet });
    await mapLimit(
      Array.from({ length: 25 }, (_, i) => `auto/${String(i).padStart(3, '0')}.jpg`),
      8,
      (key) =>
        stack.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from(key) })),
    );
  });
  after(async () => {
    await stack?.stop();
  });

  it('counts a prefix page by page and stops once it has seen enough', async () => {
    assert.equal(await countObjects(stack.clients.s3, bucket, 'auto/', 100, 10), 25, 'every page');
    assert.equal(await countObjects(stack.clients.s3, bucket, 'auto/', 15, 10), 20, 'two pages reach 15');
    assert.equal(await countObjects(stack.clients.s3, bucket, 'none/', 100, 10), 0);
  });

  it('chooses by the counted size and stores the reason with the job', async () => {
    const choice = await resolveAutoTarget({
      model: efficientNet('efficientnet_b7'),
      gpuInstanceType: 'g6.xlarge',
      memoryMb: CLASSIFY.memoryMb,
      batchSize: CLASSIFY.batchSize,
      countImages: (atMost) => countObjects(stack.clients.s3, bucket, 'auto/', atMost, 10),
    });
    // 25 images never pay for starting a GPU instance.
    assert.equal(choice.target, 'lambda');
    assert.match(choice.reason, /efficientnet_b7, 25 images: Lambda \$[\d.]+ against g6\.xlarge/);

    const jobs = createJobsService(
      stack.clients,
      {
        jobsTable: stack.names.jobsTable,
        resultsTable: stack.names.resultsTable,
        planQueueUrl: stack.queues.plan.url,
        models: stack.models,
        readableBuckets: stack.readableBuckets,
      },
      stack.region,
    );
    const job = await jobs.start({
      bucket,
      prefix: 'auto/',
      target: choice.target,
      targetReason: choice.reason,
      mode: 'all',
    });
    const stored = await jobs.get(job.jobId);
    assert.equal(stored?.target, 'lambda');
    assert.equal(stored?.targetReason, choice.reason);
    assert.equal(printedJob(stored as NonNullable<typeof stored>).targetReason, choice.reason);

    // A job started with an explicit target carries no reason.
    const plain = await jobs.start({ bucket, prefix: 'auto/', target: 'gpu', mode: 'all' });
    assert.equal((await jobs.get(plain.jobId))?.targetReason, undefined);
    assert.equal('targetReason' in printedJob(plain), false);
  });
});
