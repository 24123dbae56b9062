import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LabelerError } from '../../shared/errors.ts';
import type { JobCounts, JobLedger } from '../../shared/labeling/jobs.ts';
import type { ImageResult, ResultsStore } from '../../shared/labeling/results.ts';
import { paddedSequencer } from '../../shared/labeling/s3-event.ts';

/** A ResultsStore under test, with a twin that counts jobs' results in a ledger. */
export interface ResultsStoreSubject {
  /** Index floor 0.05, counts no job. */
  readonly store: ResultsStore;
  /** The same results, counting each job result once in `ledger`. */
  readonly jobStore: ResultsStore;
  readonly ledger: JobLedger;
  counts(jobId: string): Promise<Omit<JobCounts, 'total'>>;
}

export const model = { id: 'm', version: '1' };
const timings = { readMs: 1, preprocessMs: 1, inferMs: 1, batchSize: 1 };

/** An ok result of `model` for image b/k.png, as the store tests write it, with `overrides`. */
export function storeResult(overrides: Partial<ImageResult>): ImageResult {
  return {
    bucket: 'b',
    key: 'k.png',
    eTag: 'e1',
    size: 10,
    sequencer: paddedSequencer('0A'),
    model,
    status: 'ok',
    labels: [],
    timings,
    labeledAt: '2026-11-27T00:00:00.000Z',
    ...overrides,
  };
}

/**
 * The ResultsStore semantics the use cases rely on, run over the in-memory store
 * (test/unit/memory-results-store.test.ts) and over DynamoDB Local
 * (test/integration/results-store.test.ts): what keeps the fast tier's store honest.
 * Every key is prefixed by `ns` so the tests share one table.
 */
export function describeResultsStoreContract(ns: string, subject: () => ResultsStoreSubject): void {
  let n = 0;
  const fresh = () => `${ns}/${++n}`;
  const result = storeResult;
  const hits = async (label: string, minScore = 0) =>
    (await subject().store.queryByLabel({ model, label, minScore, limit: 10 })).items.map(
      (h) => `${h.key}:${h.score}:${h.rank}`,
    );
  const values = (settled: Array<PromiseSettledResult<string>>) =>
    settled.map((s) => (s.status === 'fulfilled' ? s.value : `rejected: ${String(s.reason)}`));

  describe('the ResultsStore contract', () => {
    it('writes once per content: the same eTag again, or an older event, is a duplicate', async () => {
      const { store } = subject();
      const key = fresh();
      const first = result({ key, labels: [{ label: `${key}A`, score: 0.9 }] });
      assert.equal(await store.put(first), 'written');
      assert.equal(await store.put(first), 'duplicate');
      assert.equal(
        await store.put(result({ key, eTag: 'same-bytes-later', sequencer: paddedSequencer('09') })),
        'duplicate',
        'an older event for other content',
      );
      assert.equal(
        await store.put(result({ key, sequencer: paddedSequencer('0F') })),
        'duplicate',
        'the same content uploaded again',
      );
      assert.deepEqual(await store.getByImage('b', key), [first]);
    });

    it('lets the newest upload win whatever order the events arrive in, and finds it per model', async () => {
      const { store } = subject();
      const key = fresh();
      const older = result({ key, eTag: 'old', sequencer: paddedSequencer('10') });
      const newer = result({ key, eTag: 'new', sequencer: paddedSequencer('11') });
      assert.equal(await store.put(newer), 'written');
      assert.equal(await store.put(older, newer), 'duplicate', 'the older event, delivered late');
      assert.deepEqual(await store.getByImage('b', key), [newer]);
      const found = await store.findExisting(
        [
          { bucket: 'b', key },
          { bucket: 'b', key: `${key}-none` },
        ],
        model,
      );
      assert.deepEqual([...found], [[`b/${key}`, newer]]);
      assert.equal((await store.findExisting([{ bucket: 'b', key }], { id: 'm', version: '2' })).size, 0);
      const newest = result({ key, eTag: 'newest', sequencer: paddedSequencer('12') });
      assert.equal(await store.put(newest, newer), 'written');
      assert.deepEqual(await store.getByImage('b', key), [newest]);
    });

    it('indexes labels at or above the floor and keeps the index exact over re-uploads', async () => {
      const { store } = subject();
      const key = fresh();
      const [a, b, c] = [`${key}A`, `${key}B`, `${key}C`];
      const v1 = result({
        key,
        labels: [
          { label: a, score: 0.7 },
          { label: b, score: 0.06 },
          { label: c, score: 0.01 },
        ],
      });
      await store.put(v1);
      assert.deepEqual((await store.getByImage('b', key))[0]?.labels, v1.labels);
      assert.deepEqual(await hits(a), [`${key}:0.7:1`]);
      assert.deepEqual(await hits(b), [`${key}:0.06:2`]);
      assert.deepEqual(await hits(c), [], 'below the floor: not indexed');
      assert.deepEqual(await hits(b, 0.5), []);
      const v2 = result({
        key,
        eTag: 'e2',
        sequencer: paddedSequencer('0B'),
        labels: [{ label: c, score: 0.95 }],
      });
      assert.equal(await store.put(v2, v1), 'written');
      assert.deepEqual(await hits(c), [`${key}:0.95:1`]);
      assert.deepEqual([...(await hits(a)), ...(await hits(b))], [], 'the old labels left the index');
      const v3 = result({
        key,
        eTag: 'e3',
        sequencer: paddedSequencer('0C'),
        status: 'failed',
        error: { code: 'image/decode-failed', message: 'broken' },
      });
      assert.equal(await store.put(v3, v2), 'written');
      assert.deepEqual(await hits(c), []);
      assert.deepEqual(await store.getByImage('b', key), [v3]);
    });

    it('pages a label query best first, each image once, and refuses a cursor of another query', async () => {
      const { store } = subject();
      const label = fresh();
      for (let i = 0; i < 5; i++) {
        await store.put(result({ key: `${label}/${i}`, labels: [{ label, score: 0.5 + i / 10 }] }));
      }
      const keys: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.queryByLabel({
          model,
          label,
          minScore: 0.6,
          limit: 2,
          ...(cursor ? { cursor } : {}),
        });
        keys.push(...page.items.map((h) => h.key));
        cursor = page.cursor;
        pages++;
      } while (cursor && pages < 10);
      assert.deepEqual(
        keys,
        [4, 3, 2, 1].map((i) => `${label}/${i}`),
      );
      const first = await store.queryByLabel({ model, label, minScore: 0.6, limit: 2 });
      const other = await store
        .queryByLabel({ model, label: `${label}-other`, minScore: 0.6, limit: 2, cursor: first.cursor })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(other instanceof LabelerError, String(other));
      assert.equal(other.code, 'query/bad-cursor');
    });

    it('putAll: one outcome per write, in order; a duplicate among new results; the newer of one image twice wins', async () => {
      const { store } = subject();
      const keys = [fresh(), fresh(), fresh()];
      assert.equal(await store.put(result({ key: keys[1] })), 'written');
      assert.deepEqual(values(await store.putAll(keys.map((key) => ({ result: result({ key }) })))), [
        'written',
        'duplicate',
        'written',
      ]);
      const key = fresh();
      const older = result({ key, eTag: 'old', sequencer: paddedSequencer('10') });
      const newer = result({ key, eTag: 'new', sequencer: paddedSequencer('11') });
      assert.deepEqual(values(await store.putAll([{ result: older }, { result: newer, previous: older }])), [
        'written',
        'written',
      ]);
      assert.deepEqual(await store.getByImage('b', key), [newer]);
    });

    it("counts a job's results once, with their write: a redelivery writes and counts nothing", async () => {
      const { jobStore, counts } = subject();
      const jobId = `job-${fresh().replace(/\W/g, '')}`;
      const writes = [fresh(), fresh()].map((key) => ({ result: result({ key, jobId }) }));
      const broken = {
        result: result({
          key: fresh(),
          jobId,
          status: 'failed',
          error: { code: 'image/decode-failed', message: 'x' },
        }),
      };
      assert.deepEqual(values(await jobStore.putAll([...writes, broken])), ['written', 'written', 'written']);
      assert.deepEqual(await counts(jobId), { labeled: 2, failed: 1, skipped: 0, cancelled: 0 });
      assert.deepEqual(values(await jobStore.putAll([...writes, broken])), [
        'duplicate',
        'duplicate',
        'duplicate',
      ]);
      assert.equal(await jobStore.put(writes[0]?.result as ImageResult), 'duplicate');
      assert.deepEqual(await counts(jobId), { labeled: 2, failed: 1, skipped: 0, cancelled: 0 });
    });

    it('writes the result of an image its job already gave up on, without counting it again', async () => {
      const { jobStore, ledger, counts } = subject();
      const jobId = `job-${fresh().replace(/\W/g, '')}`;
      const key = fresh();
      const gaveUp = { code: 'queue/retries-exhausted', message: 'gave up' };
      assert.equal(await ledger.record(jobId, { bucket: 'b', key }, 'failed', gaveUp), true);
      assert.equal(
        await ledger.record(jobId, { bucket: 'b', key }, 'failed', gaveUp),
        false,
        'recorded once',
      );
      const late = result({ key, jobId });
      assert.equal(await jobStore.put(late), 'written');
      assert.deepEqual(await jobStore.getByImage('b', key), [late]);
      assert.deepEqual(await counts(jobId), { labeled: 0, failed: 1, skipped: 0, cancelled: 0 });
    });

    it("relabels (a job in mode all) over the same content unless it is the job's own, keeping the upload's sequencer", async () => {
      const { jobStore, counts } = subject();
      const jobId = `job-${fresh().replace(/\W/g, '')}`;
      const key = fresh();
      const upload = result({
        key,
        sequencer: paddedSequencer('20'),
        labels: [{ label: `${key}A`, score: 0.5 }],
      });
      assert.equal(await jobStore.put(upload), 'written');
      const again = result({
        key,
        jobId,
        sequencer: paddedSequencer('0'),
        labels: [{ label: `${key}A`, score: 0.6 }],
      });
      assert.equal(await jobStore.put(again, upload, true), 'written');
      assert.equal(await jobStore.put(again, upload, true), 'duplicate', "now it is this job's own");
      assert.deepEqual(await jobStore.getByImage('b', key), [{ ...again, sequencer: upload.sequencer }]);
      assert.deepEqual(await counts(jobId), { labeled: 1, failed: 0, skipped: 0, cancelled: 0 });
      const late = result({ key, eTag: 'older', sequencer: paddedSequencer('1F') });
      assert.equal(await jobStore.put(late), 'duplicate', 'an event older than the upload still loses');
      const otherContent = result({
        key,
        eTag: 'other',
        jobId: `${jobId}x`,
        sequencer: paddedSequencer('0'),
      });
      assert.equal(
        await jobStore.put(otherContent, upload, true),
        'duplicate',
        'content changed since: not relabeled',
      );
    });

    it("writes a job's result over other content while that result is still there (mode stale after a re-upload)", async () => {
      const { jobStore, counts } = subject();
      const jobId = `job-${fresh().replace(/\W/g, '')}`;
      const key = fresh();
      const before = result({ key, eTag: 'old', sequencer: paddedSequencer('20') });
      assert.equal(await jobStore.put(before), 'written');
      // The job lists the new bytes: its message has no sequencer of its own.
      const listed = result({ key, eTag: 'new', jobId, sequencer: paddedSequencer('0') });
      assert.equal(await jobStore.put(listed, before), 'written');
      assert.deepEqual(await jobStore.getByImage('b', key), [{ ...listed, sequencer: before.sequencer }]);
      assert.deepEqual(await counts(jobId), { labeled: 1, failed: 0, skipped: 0, cancelled: 0 });
      assert.equal(
        await jobStore.put(listed, before),
        'duplicate',
        'a redelivery: the result it replaced is gone',
      );
      assert.equal(
        await jobStore.put(result({ key, eTag: 'old', sequencer: paddedSequencer('20') })),
        'duplicate',
        'the old event arriving late still loses',
      );
      const newer = result({ key, eTag: 'newest', sequencer: paddedSequencer('30') });
      assert.equal(await jobStore.put(newer), 'written', "a newer upload wins over the job's result");
      const otherJob = result({ key, eTag: 'new', jobId: `${jobId}x`, sequencer: paddedSequencer('0') });
      assert.equal(await jobStore.put(otherJob, before), 'duplicate', 'a job that saw an older result loses');
    });

    it('refuses a key DynamoDB cannot hold as permanent (aws/invalid-request)', async () => {
      const { store } = subject();
      const error = await store.put(result({ key: 'k'.repeat(2100) })).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error instanceof LabelerError, String(error));
      assert.equal(error.code, 'aws/invalid-request');
      assert.equal(error.permanent, true);
    });
  });
}
