import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { PACKAGE_ROOT } from '../../shared/paths.ts';
import { RESOURCE_NAMES } from '../../shared/settings.ts';
import { waitFor } from '../helpers/wait.ts';

describe('a schedule fires in the local stack (test clock)', () => {
  let stack: LocalStack;
  let now = Date.parse('2026-11-28T10:00:00Z');
  const clock = () => new Date(now);

  before(async () => {
    stack = await startLocalStack({ isolation: 'in-process', now: clock, schedulePollMs: 0 });
    const body = await readFile(
      join(PACKAGE_ROOT, 'models', 'fashion-efficientnet', 'samples', 'test-00000.png'),
    );
    for (const n of [1, 2, 3]) {
      await stack.clients.s3.send(
        new PutObjectCommand({
          Bucket: RESOURCE_NAMES.imagesBucket,
          Key: `datasets/sched/${n}.png`,
          Body: body,
        }),
      );
    }
  });
  after(() => stack?.stop());

  it('rate(1 minute) starts one job per firing, keyed by schedule and scheduled time, that labels the prefix', async () => {
    await stack.schedules.add({
      name: 'every-minute',
      expression: 'rate(1 minute)',
      bucket: RESOURCE_NAMES.imagesBucket,
      prefix: 'datasets/sched/',
      target: 'lambda',
      mode: 'all',
    });
    assert.deepEqual(await stack.schedules.tick(), [], 'nothing is due at creation');
    now += 60_000;
    const [firing, ...more] = await stack.schedules.tick();
    assert.deepEqual(more, []);
    assert.equal(firing?.scheduledTime, '2026-11-28T10:01:00.000Z');
    assert.deepEqual(await stack.schedules.tick(), [], 'the same minute does not fire twice');

    const jobId = firing?.jobId ?? '';
    const started = await stack.jobs.get(jobId);
    assert.equal(started?.scheduleName, 'every-minute');
    assert.equal(started?.prefix, 'datasets/sched/');
    // The firing's key makes a redelivered firing the same job.
    const again = await stack.jobs.start({
      bucket: RESOURCE_NAMES.imagesBucket,
      prefix: 'datasets/sched/',
      target: 'lambda',
      mode: 'all',
      scheduleName: 'every-minute',
      idempotencyKey: 'every-minute@2026-11-28T10:01:00.000Z',
    });
    assert.equal(again.jobId, jobId);

    const finished = await waitFor(
      'the scheduled job to finish',
      async () => {
        const job = await stack.jobs.get(jobId);
        return job && job.status !== 'planning' && job.status !== 'running' ? job : undefined;
      },
      180_000,
    );
    assert.equal(finished.status, 'succeeded');
    assert.equal(finished.total, 3);
    assert.equal(finished.labeled, 3);

    now += 60_000;
    const [next] = await stack.schedules.tick();
    assert.equal(next?.scheduledTime, '2026-11-28T10:02:00.000Z');
    assert.notEqual(next?.jobId, jobId);
  });

  it('lists and removes schedules through the same table the CLI uses', async () => {
    assert.deepEqual(
      (await stack.schedules.list()).map((s) => s.name),
      ['every-minute'],
    );
    await stack.schedules.remove('every-minute');
    now += 5 * 60_000;
    assert.deepEqual(await stack.schedules.tick(), []);
    await assert.rejects(stack.schedules.remove('every-minute'), /no schedule named every-minute/);
  });
});
