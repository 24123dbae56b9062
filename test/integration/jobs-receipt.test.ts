import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { meterCalls, UsageMeter } from '../../shared/aws/usage-meter.ts';
import { mapLimit } from '../../shared/labeling/image-labeler.ts';
import type { Job } from '../../shared/labeling/jobs.ts';
import { solidImage } from '../helpers/images.ts';
import { waitFor } from '../helpers/wait.ts';

const JOB_DEADLINE_MS = 300_000;

describe("a finished job's receipt: what its workers counted as they went (decision 0035)", () => {
  let stack: LocalStack;
  /** Every call of the classify handler's own clients, metered apart from the receipt's meters. */
  const meter = new UsageMeter();
  const handled: number[] = [];

  before(async () => {
    stack = await startLocalStack({
      isolation: 'in-process',
      log: { info: () => {}, warn: () => {}, error: () => {} },
      configureHandlerClients: (c) => {
        for (const client of [c.s3, c.dynamo]) meterCalls(client as never, meter);
      },
    });
    stack.onReport((report) => handled.push(report.counts.images));
  });
  after(async () => {
    await stack?.stop();
  });

  it('counts a GET per image through the model, the export PUTs and the units its handler used', async () => {
    const bucket = stack.names.imagesBucket;
    const keys = Array.from({ length: 9 }, (_, i) => `receipt/${i}.${i < 8 ? 'png' : 'jpg'}`);
    await mapLimit(keys, 4, async (key, i) => {
      const body =
        i < 8
          ? await solidImage(30 + i, 20, `#${(40 + i * 20).toString(16)}2040`)
              .png()
              .toBuffer()
          : Buffer.from('not an image');
      await stack.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    });
    const started = await stack.jobs.start({ bucket, prefix: 'receipt/', target: 'lambda', mode: 'all' });
    // The usage is added after the images are counted: the receipt is whole once every image's
    // invocation has returned.
    const job: Job = await waitFor(
      'the job finished and its invocations returned',
      async () => {
        const now = await stack.jobs.get(started.jobId);
        const returned = handled.reduce((a, b) => a + b, 0);
        return now?.status === 'succeeded' && returned >= now.total ? now : undefined;
      },
      JOB_DEADLINE_MS,
    );
    assert.deepEqual([job.total, job.labeled, job.failed], [9, 8, 1]);
    const receipt = job.receipt;
    assert.ok(receipt, 'a finished job has its receipt');
    const seen = meter.snapshot();
    // One GET per image through the model (the broken one too), as the handler's clients sent them.
    assert.equal(receipt.s3Requests.get, 9);
    assert.equal(receipt.s3Requests.get, seen.requests['s3:GetObject']);
    assert.equal(receipt.s3Requests.put, seen.requests['s3:PutObject']);
    assert.ok(receipt.s3Requests.put >= 1, 'the JSON Lines export');
    const units = Object.values(seen.units);
    const write = units.reduce((n, u) => n + u.write, 0);
    const read = units.reduce((n, u) => n + u.read, 0);
    // The handler's units plus, by rule, 1 for each invocation's own usage ADD (sent after its snapshot).
    assert.equal(receipt.dynamoWriteUnits, write);
    assert.equal(receipt.dynamoReadUnits, read);
    assert.ok(receipt.dynamoWriteUnits >= 9 * 2, 'a result and a marker per image at least');
    assert.equal(receipt.sqsRequests, 2 * (job.usage?.invocations ?? 0));
    assert.ok(receipt.computeSeconds > 0 && receipt.lambdaGbSeconds !== undefined);
    assert.ok(receipt.dollars.total > 0);
    assert.equal(receipt.rekognitionPerThousand, 1);
    assert.ok(receipt.dollarsPerThousand < receipt.rekognitionPerThousand);
  });
});
