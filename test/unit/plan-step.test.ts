import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { LabelerError } from '../../shared/errors.ts';
import { type PlanOutcome, planStep, startJob } from '../../shared/labeling/plan-job.ts';
import { MemoryJobs, MemoryS3, memoryPlanPorts } from '../helpers/memory-ports.ts';

const bucket = 'labeler-images';
const model = { id: 'test-model', version: '1' };
const onePage = (pageSize: number) => ({
  pageSize,
  stepBudgetMs: 60_000,
  maxPagesPerStep: 1,
  predecessorWaitMs: 0,
});

describe('planStep against in-memory ports: planning in pages that continue themselves (decision 0014)', () => {
  let s3: MemoryS3;
  let jobs: MemoryJobs;
  let ports: ReturnType<typeof memoryPlanPorts>;
  beforeEach(() => {
    s3 = new MemoryS3();
    jobs = new MemoryJobs();
    ports = memoryPlanPorts(s3, jobs, model);
  });
  const put = (keys: readonly string[]) => {
    for (const key of keys) s3.put(bucket, key, Buffer.from(key));
  };
  /** Every (key, job id) the messages on a queue announce. */
  const announced = (target: 'lambda' | 'gpu') =>
    ports.queues[target].flatMap((m) => {
      const body = JSON.parse(m.body) as {
        labelerJobId: string;
        Records: Array<{ s3: { object: { key: string } } }>;
      };
      return body.Records.map((r) => ({
        key: decodeURIComponent(r.s3.object.key),
        jobId: body.labelerJobId,
      }));
    });
  const drainPlan = async (options = onePage(100)): Promise<PlanOutcome[]> => {
    const outcomes: PlanOutcome[] = [];
    for (let m = ports.planQueue.shift(); m; m = ports.planQueue.shift())
      outcomes.push(await planStep(m.body, ports, options));
    return outcomes;
  };

  it('plans a prefix one page per step, each step sending the next, to an exact total', async () => {
    const keys = Array.from({ length: 250 }, (_, i) => `big/${String(i).padStart(4, '0')}.jpg`);
    put([...keys, 'bigger/outside.jpg', 'big/folder/']);
    const { jobId } = await startJob({ bucket, prefix: 'big', target: 'lambda', mode: 'all' }, ports);
    assert.equal((await jobs.get(jobId))?.total, 0, 'nothing is listed at start');
    const first = await planStep(ports.planQueue.shift()?.body ?? '', ports, onePage(10));
    assert.deepEqual(first, { kind: 'planned', jobId, page: 0, objects: 10, done: false });
    const partial = await jobs.get(jobId);
    assert.deepEqual([partial?.total, partial?.status, partial?.planningDone], [10, 'running', false]);
    const rest = await drainPlan(onePage(10));
    assert.equal(rest.length, 25, 'one step per page (the last holds the folder marker)');
    const planned = await jobs.get(jobId);
    assert.deepEqual([planned?.total, planned?.planningDone], [250, true]);
    const images = announced('lambda');
    assert.deepEqual(
      images.map((i) => i.key).sort(),
      keys,
      'each object once; no folder marker, nothing outside',
    );
    assert.ok(images.every((i) => i.jobId === jobId));
    assert.equal(ports.queues.lambda.length, 25, 'ten objects per message');
  });

  it('a duplicate plan step enqueues and adds nothing; a step ahead of its predecessor waits (transient)', async () => {
    put(['dup/a.jpg', 'dup/b.jpg', 'dup/c.jpg']);
    const { jobId } = await startJob({ bucket, prefix: 'dup/', target: 'gpu', mode: 'all' }, ports);
    const first = ports.planQueue.shift()?.body ?? '';
    assert.equal((await planStep(first, ports, onePage(2))).kind, 'planned');
    const sent = ports.queues.gpu.length;
    assert.deepEqual(await planStep(first, ports, onePage(2)), {
      kind: 'skipped',
      jobId,
      reason: 'step 0 was already planned',
    });
    assert.equal(ports.queues.gpu.length, sent);
    const ahead = JSON.stringify({ kind: 'continue', jobId, page: 5, token: 'dup/b.jpg' });
    await assert.rejects(
      planStep(ahead, ports, onePage(2)),
      (e: LabelerError) => e.code === 'job/plan-out-of-order' && !e.permanent,
    );
    await drainPlan(onePage(2));
    assert.equal((await jobs.get(jobId))?.total, 3);
    assert.deepEqual(
      announced('gpu')
        .map((i) => i.key)
        .sort(),
      ['dup/a.jpg', 'dup/b.jpg', 'dup/c.jpg'],
      'target gpu: the bulk queue',
    );
    assert.deepEqual(announced('lambda'), []);
  });

  it('the same idempotency key (a schedule firing delivered twice) creates one job and plans it once', async () => {
    put(['sched/1.jpg', 'sched/2.jpg']);
    const request = {
      bucket,
      prefix: 'sched/',
      target: 'lambda',
      mode: 'stale',
      scheduleName: 'nightly',
      idempotencyKey: 'nightly@2026-11-28T03:00:00Z',
    };
    ports.planQueue.push({ messageId: 's1', body: JSON.stringify({ kind: 'start', request }) });
    ports.planQueue.push({ messageId: 's2', body: JSON.stringify({ kind: 'start', request }) });
    const outcomes = await drainPlan();
    assert.deepEqual(
      outcomes.map((o) => o.kind),
      ['started', 'started', 'planned'],
    );
    const ids = new Set(outcomes.map((o) => o.jobId));
    assert.equal(ids.size, 1);
    const job = await jobs.get([...ids][0] ?? '');
    assert.deepEqual([job?.total, job?.scheduleName, job?.status], [2, 'nightly', 'running']);
    assert.equal(announced('lambda').length, 2, 'enqueued once');
  });

  it('cancel stops planning: the next step lists nothing, and the job is cancelled once its counts add up', async () => {
    put(['cancel/1.jpg', 'cancel/2.jpg', 'cancel/3.jpg']);
    const { jobId } = await startJob({ bucket, prefix: 'cancel/', target: 'lambda', mode: 'all' }, ports);
    await planStep(ports.planQueue.shift()?.body ?? '', ports, onePage(1));
    assert.equal(await jobs.cancel(jobId), true);
    assert.deepEqual(await drainPlan(onePage(1)), [
      { kind: 'skipped', jobId, reason: 'job is cancelling: planning stopped' },
    ]);
    const stopped = await jobs.get(jobId);
    assert.deepEqual([stopped?.total, stopped?.planningDone, stopped?.status], [1, true, 'cancelling']);
    const [image] = announced('lambda');
    assert.equal(await jobs.record(jobId, { bucket, key: image?.key ?? '' }, 'cancelled'), true);
    await jobs.checkCompletion(jobId);
    const done = await jobs.get(jobId);
    assert.deepEqual([done?.status, done?.total, done?.cancelled], ['cancelled', 1, 1]);
    assert.ok(done?.finishedAt);
  });

  it('cancel before the first step: a total of 0 and cancelled at once', async () => {
    put(['cancel0/1.jpg']);
    const { jobId } = await startJob({ bucket, prefix: 'cancel0/', target: 'lambda', mode: 'all' }, ports);
    await jobs.cancel(jobId);
    assert.equal((await drainPlan())[0]?.kind, 'skipped');
    const done = await jobs.get(jobId);
    assert.deepEqual([done?.status, done?.total, done?.planningDone], ['cancelled', 0, true]);
    assert.deepEqual(announced('lambda'), []);
  });

  it('rejects a bad request with job/invalid-request, and a missing bucket fails the job with its reason', async () => {
    await assert.rejects(
      startJob({ bucket: 'X', prefix: '', target: 'tpu', mode: 'all' }, ports),
      (e: LabelerError) => e.code === 'job/invalid-request' && /target/.test(e.message),
    );
    const { jobId } = await startJob(
      { bucket: 'no-such-bucket', prefix: '', target: 'lambda', mode: 'all' },
      ports,
    );
    const [outcome] = await drainPlan();
    assert.deepEqual(outcome, { kind: 'skipped', jobId, reason: 'planning failed: job/list-failed' });
    const failed = await jobs.get(jobId);
    assert.deepEqual([failed?.status, failed?.error?.code], ['failed', 'job/list-failed']);
  });
});
