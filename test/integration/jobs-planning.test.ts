import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { createPlanPorts } from '../../shared/aws/plan-job.ts';
import { assertPrefixHasObjects } from '../../shared/aws/prefix-contents.ts';
import type { LabelerError } from '../../shared/errors.ts';
import { mapLimit } from '../../shared/labeling/image-labeler.ts';
import { type PlanOutcome, planStep } from '../../shared/labeling/plan-job.ts';
import { waitFor } from '../helpers/wait.ts';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

/**
 * Planning alone (no classify worker): the plan queue's steps and what they enqueue.
 * Here the test drives the plan steps itself, so it can see and repeat each one.
 */
describe('labeling jobs: planning in pages that continue themselves (decision 0014)', () => {
  let stack: LocalStack;
  let ports: ReturnType<typeof createPlanPorts>;
  const bucket = 'labeler-images';

  before(async () => {
    // Granted, yet missing: the job fails while listing it.
    stack = await startLocalStack({
      worker: false,
      planner: false,
      readableBuckets: ['no-such-bucket'],
      log: quiet,
    });
    ports = createPlanPorts(
      stack.clients,
      {
        jobsTable: stack.names.jobsTable,
        resultsTable: stack.names.resultsTable,
        planQueueUrl: stack.queues.plan.url,
        models: stack.models,
      },
      stack.region,
    );
  });
  after(async () => {
    await stack?.stop();
  });

  const put = (keys: readonly string[]) =>
    mapLimit(keys, 16, (key) =>
      stack.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from(key) })),
    );

  /** Receives one plan message (the test is the plan-job function here). */
  const nextPlanBody = async (): Promise<string | undefined> => {
    const r = await stack.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: stack.queues.plan.url,
        MaxNumberOfMessages: 1,
        VisibilityTimeout: 300,
      }),
    );
    const m = r.Messages?.[0];
    if (!m) return undefined;
    await stack.clients.sqs.send(
      new DeleteMessageCommand({ QueueUrl: stack.queues.plan.url, ReceiptHandle: m.ReceiptHandle }),
    );
    return m.Body;
  };

  /** Drains a queue, returning every (key, job id) its S3-event-shaped messages announce. */
  const drainImages = async (queueUrl: string): Promise<Array<{ key: string; jobId: string }>> => {
    const got: Array<{ key: string; jobId: string }> = [];
    for (;;) {
      const r = await stack.clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 300 }),
      );
      if (!r.Messages?.length) return got;
      for (const m of r.Messages) {
        const body = JSON.parse(m.Body ?? '{}');
        for (const rec of body.Records ?? [])
          got.push({ key: decodeURIComponent(rec.s3.object.key), jobId: body.labelerJobId });
        await stack.clients.sqs.send(
          new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }),
        );
      }
    }
  };

  it('plans a 5,000-object prefix in 50 steps of one 100-object page each, to an exact total', async () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `big/${String(i).padStart(5, '0')}.jpg`);
    await put(keys);
    await put(['bigger/outside.jpg']);
    const job = await stack.jobs.start({ bucket, prefix: 'big/', target: 'lambda', mode: 'all' });
    assert.equal(job.status, 'planning');
    assert.equal(job.total, 0, 'the job record is written before anything is listed');

    const outcomes: PlanOutcome[] = [];
    for (let body = await nextPlanBody(); body; body = await nextPlanBody()) {
      outcomes.push(await planStep(body, ports, { pageSize: 100, stepBudgetMs: 60_000, maxPagesPerStep: 1 }));
      if (outcomes.length === 1) {
        const partial = await stack.jobs.get(job.jobId);
        assert.equal(partial?.total, 100, 'updated as pages are enqueued');
        assert.equal(partial?.status, 'running');
        assert.equal(partial?.planningDone, false);
      }
    }
    assert.equal(outcomes.length, 50, 'one invocation per page: none lists the whole prefix');
    assert.ok(outcomes.every((o) => o.kind === 'planned' && o.objects === 100));
    const planned = await stack.jobs.get(job.jobId);
    assert.equal(planned?.total, 5000);
    assert.equal(planned?.planningDone, true);

    const images = await drainImages(stack.queues.jobs.url);
    assert.equal(images.length, 5000);
    assert.deepEqual([...new Set(images.map((i) => i.key))].sort(), keys);
    assert.ok(images.every((i) => i.jobId === job.jobId));
  });

  it('a duplicate plan step (redelivered after it was recorded) enqueues nothing and adds nothing', async () => {
    await put(['dup/a.jpg', 'dup/b.jpg', 'dup/c.jpg']);
    const job = await stack.jobs.start({ bucket, prefix: 'dup/', target: 'gpu', mode: 'all' });
    const first = await nextPlanBody();
    assert.ok(first);
    assert.equal(
      (await planStep(first, ports, { pageSize: 2, stepBudgetMs: 60_000, maxPagesPerStep: 1 })).kind,
      'planned',
    );
    const again = await planStep(first, ports, { pageSize: 2, stepBudgetMs: 60_000, maxPagesPerStep: 1 });
    assert.deepEqual(again, { kind: 'skipped', jobId: job.jobId, reason: 'step 0 was already planned' });
    for (let body = await nextPlanBody(); body; body = await nextPlanBody()) {
      await planStep(body, ports, { pageSize: 2, stepBudgetMs: 60_000, maxPagesPerStep: 1 });
    }
    assert.equal((await stack.jobs.get(job.jobId))?.total, 3);
    const images = await drainImages(stack.queues.bulk.url);
    assert.deepEqual(
      images.map((i) => i.key).sort(),
      ['dup/a.jpg', 'dup/b.jpg', 'dup/c.jpg'],
      'target gpu: the bulk queue',
    );
  });

  it('the same idempotency key (a schedule firing delivered twice) creates one job and plans it once', async () => {
    await put(['sched/1.jpg', 'sched/2.jpg']);
    const request = {
      bucket,
      prefix: 'sched/',
      target: 'lambda',
      mode: 'stale',
      scheduleName: 'nightly',
      idempotencyKey: 'nightly@2026-11-28T03:00:00Z',
    };
    // As EventBridge Scheduler delivers it, twice, then once more through the service.
    for (let i = 0; i < 2; i++) {
      await stack.clients.sqs.send(
        new SendMessageCommand({
          QueueUrl: stack.queues.plan.url,
          MessageBody: JSON.stringify({ kind: 'start', request }),
        }),
      );
    }
    const started: PlanOutcome[] = [];
    for (let body = await nextPlanBody(); body; body = await nextPlanBody()) {
      started.push(await planStep(body, ports, { pageSize: 100, stepBudgetMs: 60_000 }));
    }
    const viaService = await stack.jobs.start(request as Parameters<typeof stack.jobs.start>[0]);
    const ids = new Set(started.flatMap((o) => (o.kind === 'skipped' ? [] : [o.jobId])));
    assert.deepEqual([...ids], [viaService.jobId]);
    assert.deepEqual(
      started.map((o) => o.kind),
      ['started', 'started', 'planned'],
      'the second start found the job; only one plan step was sent',
    );
    assert.equal(viaService.total, 2);
    assert.equal(viaService.scheduleName, 'nightly');
    assert.equal(await nextPlanBody(), undefined, 'the retried start sent no second plan step');
    const listed = (await stack.jobs.list({ limit: 50 })).filter((j) => j.scheduleName === 'nightly');
    assert.equal(listed.length, 1);
    assert.equal((await drainImages(stack.queues.jobs.url)).length, 2, 'enqueued once');
  });

  it('cancel stops planning: the next step lists nothing, and the job is cancelled only once its counts add up', async () => {
    await put(['cancel/1.jpg', 'cancel/2.jpg', 'cancel/3.jpg']);
    const job = await stack.jobs.start({ bucket, prefix: 'cancel/', target: 'lambda', mode: 'all' });
    const options = { pageSize: 1, stepBudgetMs: 60_000, maxPagesPerStep: 1 };
    await planStep((await nextPlanBody()) ?? '', ports, options);
    const cancelling = await stack.jobs.cancel(job.jobId);
    // One image is enqueued and not accounted for: not terminal yet.
    assert.equal(cancelling.status, 'cancelling');
    assert.equal(cancelling.finishedAt, undefined);
    assert.equal((await stack.jobs.cancel(job.jobId)).status, 'cancelling', 'cancelling again is a no-op');
    const next = await planStep((await nextPlanBody()) ?? '', ports, options);
    assert.deepEqual(next, {
      kind: 'skipped',
      jobId: job.jobId,
      reason: 'job is cancelling: planning stopped',
    });
    assert.equal(await nextPlanBody(), undefined, 'no further step');
    const stopped = await stack.jobs.get(job.jobId);
    assert.equal(stopped?.total, 1, 'the total is what was enqueued before the cancel');
    assert.equal(stopped?.planningDone, true);
    assert.equal(stopped?.status, 'cancelling');
    // The worker's part (no worker here): the one enqueued image is recorded cancelled.
    const [image] = await drainImages(stack.queues.jobs.url);
    assert.equal(image?.jobId, job.jobId);
    assert.equal(await ports.store.record(job.jobId, { bucket, key: image?.key ?? '' }, 'cancelled'), true);
    await ports.store.checkCompletion(job.jobId);
    const done = await stack.jobs.get(job.jobId);
    assert.equal(done?.status, 'cancelled');
    assert.ok(done?.finishedAt);
    assert.deepEqual(
      [done?.total, done?.labeled, done?.failed, done?.skipped, done?.cancelled],
      [1, 0, 0, 0, 1],
    );
    await assert.rejects(
      stack.jobs.cancel('j-doesnotexist'),
      (e: LabelerError) => e.code === 'job/not-found',
    );
  });

  it('cancel before the first step: planning stops with a total of 0 and the job is cancelled', async () => {
    await put(['cancel0/1.jpg', 'cancel0/2.jpg']);
    const job = await stack.jobs.start({ bucket, prefix: 'cancel0/', target: 'lambda', mode: 'all' });
    assert.equal((await stack.jobs.cancel(job.jobId)).status, 'cancelling', 'the total is not known yet');
    const step = await planStep((await nextPlanBody()) ?? '', ports, { pageSize: 10, stepBudgetMs: 60_000 });
    assert.equal(step.kind, 'skipped');
    const done = await stack.jobs.get(job.jobId);
    assert.equal(done?.status, 'cancelled');
    assert.equal(done?.planningDone, true);
    assert.equal(done?.total, 0);
    assert.ok(done?.finishedAt);
    assert.deepEqual(await drainImages(stack.queues.jobs.url), [], 'nothing was enqueued');
  });

  it('a prefix names a folder (h1 is h1/, not h1gpu/); one with no objects is refused, naming what is there', async () => {
    await put(['folders/h1/a.jpg', 'folders/h1gpu/b.jpg', 'folders/h1lam/c.jpg', 'folders/readme.txt']);
    const job = await stack.jobs.start({ bucket, prefix: 'folders/h1', target: 'lambda', mode: 'all' });
    assert.equal(job.prefix, 'folders/h1/');
    await planStep((await nextPlanBody()) ?? '', ports, { pageSize: 10, stepBudgetMs: 60_000 });
    assert.deepEqual(
      (await drainImages(stack.queues.jobs.url)).map((i) => i.key),
      ['folders/h1/a.jpg'],
      'only the folder h1/',
    );
    assert.equal((await stack.jobs.get(job.jobId))?.total, 1);

    await assertPrefixHasObjects(stack.clients.s3, bucket, 'folders/h1/');
    await assert.rejects(
      assertPrefixHasObjects(stack.clients.s3, bucket, 'folders/h2/'),
      (e: LabelerError) =>
        e.code === 'job/no-objects' &&
        e.message.startsWith('no objects under s3://labeler-images/folders/h2/') &&
        e.message.includes('s3://labeler-images/folders/ holds h1/, h1gpu/, h1lam/, readme.txt'),
    );
    // Up to the first folder that holds anything.
    await assert.rejects(
      assertPrefixHasObjects(stack.clients.s3, bucket, 'folders/h2/deeper/'),
      (e: LabelerError) => e.message.includes('s3://labeler-images/folders/ holds h1/'),
    );
    await assert.rejects(assertPrefixHasObjects(stack.clients.s3, bucket, 'nowhere/'), (e: LabelerError) =>
      /s3:\/\/labeler-images\/ holds .*folders\//.test(e.message),
    );
    // A listing that fails is not judged here: the job fails while planning, with its reason.
    await assertPrefixHasObjects(stack.clients.s3, 'no-such-bucket', 'x/');
  });

  it('rejects a bad request with job/invalid-request, and a missing bucket fails the job with its reason', async () => {
    await assert.rejects(
      stack.jobs.start({ bucket: 'X', prefix: '', target: 'tpu' as 'gpu', mode: 'all' }),
      (e: LabelerError) => e.code === 'job/invalid-request' && /target/.test(e.message),
    );
    const job = await stack.jobs.start({
      bucket: 'no-such-bucket',
      prefix: '',
      target: 'lambda',
      mode: 'all',
    });
    const outcome = await planStep((await nextPlanBody()) ?? '', ports, {
      pageSize: 10,
      stepBudgetMs: 60_000,
    });
    assert.equal(outcome.kind, 'skipped');
    const failed = await waitFor('failed job', async () => {
      const j = await stack.jobs.get(job.jobId);
      return j?.status === 'failed' ? j : undefined;
    });
    assert.equal(failed.error?.code, 'job/list-failed');
  });
});
