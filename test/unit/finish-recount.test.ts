import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { type PlanOutcome, planStep, startJob } from '../../shared/labeling/plan-job.ts';
import { MemoryJobs, MemoryS3, memoryPlanPorts } from '../helpers/memory-ports.ts';

const bucket = 'labeler-images';
const model = { id: 'test-model', version: '1' };
const options = { pageSize: 100, stepBudgetMs: 60_000, predecessorWaitMs: 0, recountPagesPerStep: 1 };

describe('the finishing recount as a chain of plan steps (decision 0027), in-memory ports', () => {
  let jobs: MemoryJobs;
  let ports: ReturnType<typeof memoryPlanPorts>;
  const keys = Array.from({ length: 25 }, (_, i) => `big/${String(i).padStart(3, '0')}.jpg`);
  beforeEach(() => {
    const s3 = new MemoryS3();
    // Every job is "large" (limit 0), two markers a page, one page a step: a long chain.
    jobs = new MemoryJobs({
      inlineRecountMax: 0,
      recountPageLimit: 2,
      sendRecount: (m) => ports.sendPlan(m),
    });
    ports = memoryPlanPorts(s3, jobs, model);
    for (const key of keys) s3.put(bucket, key, Buffer.from(key));
  });
  const drain = async (): Promise<PlanOutcome[]> => {
    const outcomes: PlanOutcome[] = [];
    for (let m = ports.planQueue.shift(); m; m = ports.planQueue.shift()) {
      outcomes.push(await planStep(m.body, ports, options));
    }
    return outcomes;
  };
  /** A planned job with `n` of its images recorded: 3 failed, the rest labeled. */
  const plannedJob = async (n: number): Promise<string> => {
    const { jobId } = await startJob({ bucket, prefix: 'big', target: 'lambda', mode: 'all' }, ports);
    await drain();
    for (const [i, key] of keys.slice(0, n).entries()) {
      jobs.mark(jobId, { bucket, key }, i < 3 ? 'failed' : 'labeled');
    }
    return jobId;
  };

  it('counts every marker page by page and finishes the job with the exact counts; a chain starts once', async () => {
    const jobId = await plannedJob(25);
    await jobs.checkCompletion(jobId);
    await jobs.checkCompletion(jobId);
    assert.equal(ports.planQueue.length, 1, 'one chain, however many checks');
    assert.equal((await jobs.get(jobId))?.status, 'running', 'nothing was counted inline');
    const steps = await drain();
    assert.ok(steps.length >= 13, `25 markers at 2 a page take at least 13 steps, took ${steps.length}`);
    assert.deepEqual(steps.at(-1), { kind: 'recounted', jobId, done: true, finished: true });
    const job = await jobs.get(jobId);
    assert.deepEqual(
      [job?.status, job?.labeled, job?.failed, job?.skipped, job?.cancelled],
      ['succeeded', 22, 3, 0, 0],
    );
  });

  it('a redelivered step sends the same continuation; a step after the end changes nothing', async () => {
    const jobId = await plannedJob(25);
    await jobs.checkCompletion(jobId);
    const first = ports.planQueue.shift()?.body ?? '';
    await planStep(first, ports, options);
    await planStep(first, ports, options);
    assert.equal(ports.planQueue.length, 2);
    assert.equal(ports.planQueue[0]?.body, ports.planQueue[1]?.body, 'the same range, the same counts');
    ports.planQueue.pop();
    await drain();
    const finished = await jobs.get(jobId);
    assert.equal(finished?.status, 'succeeded');
    assert.deepEqual(await planStep(first, ports, options), {
      kind: 'skipped',
      jobId,
      reason: 'job is succeeded',
    });
    assert.deepEqual(await jobs.get(jobId), finished);
  });

  it('a chain short of the total (counters over, an image in flight) clears its flag; a later check finishes', async () => {
    const jobId = await plannedJob(24);
    jobs.overCount(jobId, 1);
    await jobs.checkCompletion(jobId);
    const steps = await drain();
    assert.deepEqual(steps.at(-1), { kind: 'recounted', jobId, done: true, finished: false });
    assert.equal((await jobs.get(jobId))?.status, 'running');
    assert.equal(jobs.recounting(jobId), false, 'the flag is cleared');
    jobs.mark(jobId, { bucket, key: keys[24] as string }, 'labeled');
    await jobs.checkCompletion(jobId);
    await drain();
    const job = await jobs.get(jobId);
    assert.deepEqual([job?.status, job?.labeled, job?.failed], ['succeeded', 22, 3]);
  });

  it('a check that comes in while a chain runs is not lost', async () => {
    const jobId = await plannedJob(24);
    jobs.overCount(jobId, 1);
    await jobs.checkCompletion(jobId);
    await planStep(ports.planQueue.shift()?.body ?? '', ports, options);
    jobs.mark(jobId, { bucket, key: keys[24] as string }, 'labeled');
    await jobs.checkCompletion(jobId);
    assert.equal(ports.planQueue.length, 1, 'the running chain goes on alone');
    await drain();
    const job = await jobs.get(jobId);
    assert.deepEqual([job?.status, job?.labeled, job?.failed], ['succeeded', 22, 3]);
  });

  it('a cancelling job ends cancelled through the chain', async () => {
    const jobId = await plannedJob(20);
    assert.equal(await jobs.cancel(jobId), true);
    for (const key of keys.slice(20)) jobs.mark(jobId, { bucket, key }, 'cancelled');
    await jobs.checkCompletion(jobId);
    await drain();
    const job = await jobs.get(jobId);
    assert.deepEqual([job?.status, job?.cancelled, job?.labeled], ['cancelled', 5, 17]);
  });
});
