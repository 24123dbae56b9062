import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import type { Job } from '../../shared/labeling/jobs.ts';
import { solidImage } from '../helpers/images.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * A job through the local stack with every job "large" (inlineRecountMax 0): the classify
 * worker that sees the counters reach the total starts the finishing recount on the plan
 * queue, and the planner's steps (two markers a page, one page a step) finish the job.
 */
describe('the finishing recount through the local stack (decision 0027)', () => {
  let stack: LocalStack;
  const bucket = 'labeler-images';
  const steps: Array<Record<string, unknown>> = [];

  before(async () => {
    stack = await startLocalStack({
      visibilityTimeoutSeconds: 5,
      recount: { inlineRecountMax: 0, recountPageLimit: 2 },
      planOptions: { pageSize: 10, maxPagesPerStep: 1, recountPagesPerStep: 1 },
      log: {
        info: (message: string, fields?: Record<string, unknown>) => {
          if (message === 'finishing recount step') steps.push(fields ?? {});
        },
        warn: () => {},
        error: () => {},
      },
    });
  });
  after(async () => {
    await stack?.stop();
  });

  it('ends the job succeeded with exact counts, counted in steps on the plan queue', async () => {
    for (let i = 0; i < 6; i++) {
      const body =
        i < 5
          ? await solidImage(32 + i, 24, `#${(i * 2654435761).toString(16).slice(-6).padStart(6, '0')}`)
              .png()
              .toBuffer()
          : Buffer.from('not an image at all');
      const key = `recount/${i}.${i < 5 ? 'png' : 'jpg'}`;
      await stack.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    }
    const started = await stack.jobs.start({ bucket, prefix: 'recount/', target: 'lambda', mode: 'all' });
    const job = await waitFor(
      `job ${started.jobId} succeeded`,
      async () => {
        const found = await stack.jobs.get(started.jobId);
        return found?.status === 'succeeded' ? found : undefined;
      },
      300_000,
    );
    const counts = (j: Job) => [j.total, j.labeled, j.failed, j.skipped, j.cancelled];
    assert.deepEqual(counts(job), [6, 5, 1, 0, 0]);
    assert.ok(job.finishedAt);
    const ours = steps.filter((s) => s.jobId === started.jobId);
    assert.ok(ours.length >= 32, `a step per shard at least, saw ${ours.length}`);
    assert.deepEqual(ours.at(-1), { kind: 'recounted', jobId: started.jobId, done: true, finished: true });
  });
});
