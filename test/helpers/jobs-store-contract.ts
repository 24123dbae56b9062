import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LabelerError } from '../../shared/errors.ts';
import type { ScheduleBaselines } from '../../shared/labeling/drift.ts';
import { type RecountMessage, recountStep } from '../../shared/labeling/finish-job.ts';
import type { JobLedger, JobRequest, JobsStore } from '../../shared/labeling/jobs.ts';
import { JOBS } from '../../shared/settings.ts';

const model = { id: 'm', version: '1' };

/**
 * The jobs store semantics planning, the jobs service and the classify workers rely on, run
 * over MemoryJobs (test/unit/memory-jobs-store.test.ts) and DynamoJobsStore on DynamoDB Local
 * (test/integration/results-store.test.ts). `ns` keeps idempotency keys apart in one table.
 */
export function describeJobsStoreContract(
  ns: string,
  subject: () => JobsStore & JobLedger & ScheduleBaselines,
  /** The same store recounting every job in pages of one marker, its steps sent to `send`. */
  paged?: (send: (message: RecountMessage) => Promise<void>) => JobsStore & JobLedger & ScheduleBaselines,
): void {
  let n = 0;
  const request = (overrides: Partial<JobRequest> = {}): JobRequest => ({
    bucket: 'b',
    prefix: `${ns}/${++n}/`,
    target: 'lambda',
    mode: 'all',
    ...overrides,
  });
  const image = (key: string) => ({ bucket: 'b', key });

  describe('the jobs store contract', () => {
    it('creates a job once per idempotency key, planning with a total of 0', async () => {
      const store = subject();
      const key = `${ns}-key-${++n}`;
      const first = await store.create(request({ idempotencyKey: key, scheduleName: 'nightly' }), model);
      const again = await store.create(request({ idempotencyKey: key }), model);
      assert.equal(first.created, true);
      assert.equal(again.created, false);
      assert.equal(again.record.jobId, first.record.jobId);
      assert.equal(again.record.prefix, first.record.prefix, 'the first request stands');
      const job = await store.get(first.record.jobId);
      assert.deepEqual(
        [job?.status, job?.total, job?.planningDone, job?.scheduleName],
        ['planning', 0, false, 'nightly'],
      );
      const other = await store.create(request(), model);
      assert.notEqual(other.record.jobId, first.record.jobId, 'no key: a new job each time');
    });

    it('applies plan steps in order, each once; a step ahead of its predecessor is a transient error', async () => {
      const store = subject();
      const { record } = await store.create(request(), model);
      const { jobId } = record;
      assert.equal(await store.recordPlanned(jobId, 0, 5, false), true);
      assert.equal((await store.get(jobId))?.status, 'running');
      assert.equal(await store.recordPlanned(jobId, 0, 5, false), false, 'a duplicate adds nothing');
      await assert.rejects(
        store.recordPlanned(jobId, 2, 5, false),
        (e: LabelerError) => e.code === 'job/plan-out-of-order' && !e.permanent,
      );
      assert.equal(await store.recordPlanned(jobId, 1, 3, true), true);
      const planned = await store.load(jobId);
      assert.deepEqual([planned?.pagesPlanned, planned?.status], [2, 'running']);
      const job = await store.get(jobId);
      assert.deepEqual([job?.total, job?.planningDone], [8, true]);
    });

    it('records each image outcome once and succeeds a job only when its counts reach the total', async () => {
      const store = subject();
      const { record } = await store.create(request(), model);
      const { jobId } = record;
      await store.recordPlanned(jobId, 0, 3, true);
      assert.equal(await store.record(jobId, image('a'), 'skipped'), true);
      assert.equal(await store.record(jobId, image('a'), 'cancelled'), false, 'the first outcome stands');
      const gaveUp = { code: 'queue/retries-exhausted', message: 'gave up' };
      assert.equal(await store.record(jobId, image('b'), 'failed', gaveUp), true);
      await store.checkCompletion(jobId);
      assert.equal((await store.get(jobId))?.status, 'running', '2 of 3');
      assert.equal(await store.record(jobId, image('c'), 'skipped'), true);
      await store.checkCompletion(jobId);
      const job = await store.get(jobId);
      assert.deepEqual(
        [job?.status, job?.labeled, job?.failed, job?.skipped, job?.cancelled],
        ['succeeded', 0, 1, 2, 0],
      );
      assert.ok(job?.finishedAt);
      const markers = [];
      for await (const m of store.markers(jobId)) markers.push(m);
      assert.deepEqual(markers.map((m) => [m.key, m.outcome, m.error?.code]).sort(), [
        ['a', 'skipped', undefined],
        ['b', 'failed', 'queue/retries-exhausted'],
        ['c', 'skipped', undefined],
      ]);
    });

    it('cancels a planning or running job once; stopped planning ends it cancelled when its counts add up', async () => {
      const store = subject();
      const { record } = await store.create(request(), model);
      const { jobId } = record;
      await store.recordPlanned(jobId, 0, 1, false);
      assert.equal(await store.cancel(jobId), true);
      assert.equal(await store.cancel(jobId), false, 'already cancelling');
      assert.equal((await store.settings(jobId))?.status, 'cancelling');
      assert.equal(await store.stopPlanning(jobId, 1), true);
      assert.equal(await store.stopPlanning(jobId, 1), false);
      await store.checkCompletion(jobId);
      assert.equal((await store.get(jobId))?.status, 'cancelling', 'one image not accounted for');
      await store.record(jobId, image('x'), 'cancelled');
      await store.checkCompletion(jobId);
      const job = await store.get(jobId);
      assert.deepEqual(
        [job?.status, job?.total, job?.cancelled, job?.planningDone],
        ['cancelled', 1, 1, true],
      );
      assert.equal(await store.cancel(jobId), false, 'a finished job is not cancelled');
    });

    it('fails a job with its reason, once', async () => {
      const store = subject();
      const { record } = await store.create(request({ mode: 'stale' }), model);
      const { jobId } = record;
      assert.deepEqual(await store.settings(jobId), { status: 'planning', mode: 'stale' });
      await store.fail(jobId, { code: 'job/list-failed', message: 'NoSuchBucket' });
      await store.fail(jobId, { code: 'job/other', message: 'later' });
      const job = await store.get(jobId);
      assert.deepEqual([job?.status, job?.error?.code], ['failed', 'job/list-failed']);
      assert.ok(job?.finishedAt);
      assert.equal(await store.get('j-doesnotexist'), undefined);
    });

    it('keeps the top-1 histogram and score summary of the images labeled ok, each image once', async () => {
      const store = subject();
      const { jobId } = (await store.create(request(), model)).record;
      await store.recordPlanned(jobId, 0, 5, true);
      assert.equal(
        await store.record(jobId, image('a'), 'labeled', undefined, { label: 'Bag', score: 0.9 }),
        true,
      );
      assert.equal(
        await store.record(jobId, image('a'), 'labeled', undefined, { label: 'Shirt', score: 0.1 }),
        false,
        'a redelivery counts nothing: the first top-1 stands',
      );
      await store.record(jobId, image('b'), 'labeled', undefined, { label: 'Bag', score: 0.4 });
      await store.record(jobId, image('c'), 'labeled', undefined, { label: 'Shirt', score: 0.75 });
      await store.record(jobId, image('d'), 'skipped');
      await store.record(jobId, image('e'), 'failed', { code: 'image/empty', message: 'zero bytes' });
      await store.checkCompletion(jobId);
      const job = await store.get(jobId);
      assert.equal(job?.status, 'succeeded');
      assert.deepEqual(job?.labelSummary, {
        images: 3,
        top1: { Bag: 2, Shirt: 1 },
        meanTop1Score: (0.9 + 0.4 + 0.75) / 3,
        shareUnderHalf: 1 / 3,
      });
      const tops = [];
      for await (const m of store.markers(jobId)) tops.push([m.key, m.top?.label, m.top?.score]);
      assert.deepEqual(tops.sort(), [
        ['a', 'Bag', 0.9],
        ['b', 'Bag', 0.4],
        ['c', 'Shirt', 0.75],
        ['d', undefined, undefined],
        ['e', undefined, undefined],
      ]);
    });

    it('a job that labeled nothing ok has no label summary', async () => {
      const store = subject();
      const { jobId } = (await store.create(request(), model)).record;
      await store.recordPlanned(jobId, 0, 1, true);
      await store.record(jobId, image('a'), 'skipped');
      await store.checkCompletion(jobId);
      const job = await store.get(jobId);
      assert.deepEqual([job?.status, job?.labelSummary], ['succeeded', undefined]);
    });

    it("keeps a schedule's first claimed baseline for good", async () => {
      const store = subject();
      const schedule = `${ns}-nightly-${++n}`;
      assert.equal(await store.scheduleBaseline?.(schedule), undefined);
      const first = await store.claimBaseline(schedule, {
        jobId: 'j-first',
        top1: { Bag: 2, 'T-shirt/top': 1 },
      });
      assert.deepEqual(first, { jobId: 'j-first', top1: { Bag: 2, 'T-shirt/top': 1 } });
      const second = await store.claimBaseline(schedule, { jobId: 'j-second', top1: { Shirt: 5 } });
      assert.deepEqual(second, first, 'a later run does not replace it');
      assert.equal(await store.scheduleBaseline?.(schedule), 'j-first');
    });

    it('recounts a large job in pages through a chain of steps, started once, and keeps the exact counts', async (t) => {
      if (!paged) return t.skip('no paged subject');
      const sent: RecountMessage[] = [];
      const store = paged(async (m) => {
        sent.push(m);
      });
      const { jobId } = (await store.create(request(), model)).record;
      await store.recordPlanned(jobId, 0, 5, false);
      for (const [i, key] of ['a', 'b', 'c', 'd', 'e'].entries()) {
        assert.equal(await store.record(jobId, image(key), i < 2 ? 'failed' : 'skipped'), true);
      }
      await store.recordPlanned(jobId, 1, 3, true);
      const tops = { f: ['Bag', 0.3], g: ['Bag', 0.8], h: ['Sandal', 0.6] } as const;
      for (const [key, [label, score]] of Object.entries(tops)) {
        assert.equal(await store.record(jobId, image(key), 'labeled', undefined, { label, score }), true);
      }
      await store.checkCompletion(jobId);
      await store.checkCompletion(jobId);
      assert.equal(sent.length, 1, 'one chain');
      assert.equal((await store.get(jobId))?.status, 'running', 'not counted inline');
      let steps = 0;
      for (let m = sent.shift(); m; m = sent.shift()) {
        steps++;
        await recountStep(m, store, async (next) => void sent.push(next), {
          shards: JOBS.counterShards,
          maxPages: 1,
        });
      }
      assert.ok(steps >= JOBS.counterShards, 'a step per shard at least');
      const job = await store.get(jobId);
      assert.deepEqual([job?.status, job?.failed, job?.skipped, job?.labeled], ['succeeded', 2, 3, 3]);
      assert.deepEqual(
        job?.labelSummary,
        {
          images: 3,
          top1: { Bag: 2, Sandal: 1 },
          meanTop1Score: (0.3 + 0.8 + 0.6) / 3,
          shareUnderHalf: 1 / 3,
        },
        'the histogram carried through the steps, as the counts',
      );
    });
  });
}
