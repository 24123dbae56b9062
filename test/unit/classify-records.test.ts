import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { LabelerError, TransientError } from '../../shared/errors.ts';
import {
  type ClassifyDeps,
  classifyRecords,
  type QueueRecord,
} from '../../shared/labeling/classify-records.ts';
import { createImageLabeler } from '../../shared/labeling/create-labeler.ts';
import type { ImageLabeler } from '../../shared/labeling/image-labeler.ts';
import type { ResultsStore } from '../../shared/labeling/results.ts';
import { s3EventBody } from '../../shared/labeling/s3-event.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { MemoryExports, MemoryJobs, MemoryResultsStore, MemoryS3 } from '../helpers/memory-ports.ts';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const sample = (n: number) => readFile(join(DEFAULT_MODEL_DIR, 'samples', `test-0000${n}.png`));

interface Ref {
  bucket: string;
  key: string;
  eTag: string;
  size: number;
}

let ids = 0;
/** One SQS message announcing these objects (an S3 event; with `job`, a job's message). */
function message(
  refs: readonly Ref[],
  options: { sequencer?: string; job?: { jobId: string; mode: 'all' | 'stale' }; receives?: number } = {},
): QueueRecord {
  const records = refs.map((r) => ({ region: 'us-east-1', ...r, sequencer: options.sequencer ?? '10' }));
  return {
    messageId: `msg-${++ids}`,
    body: s3EventBody(records, options.job),
    ...(options.receives ? { attributes: { ApproximateReceiveCount: String(options.receives) } } : {}),
  };
}

describe('classifyRecords against in-memory stores with the real bundled model', () => {
  let labeler: ImageLabeler;
  let s3: MemoryS3;
  let results: MemoryResultsStore;
  let jobs: MemoryJobs;
  let exports: MemoryExports;
  const deps = (overrides: Partial<ClassifyDeps> = {}): ClassifyDeps => ({
    labeler,
    images: s3,
    results,
    exports,
    jobs,
    log: quiet,
    ...overrides,
  });
  const put = async (key: string, n = 0) => s3.put('images', key, await sample(n));

  before(async () => {
    labeler = await createImageLabeler({
      modelDir: DEFAULT_MODEL_DIR,
      intraOpThreads: 1,
      concurrency: 2,
      batchSize: 4,
    });
  });
  const reset = () => {
    s3 = new MemoryS3();
    jobs = new MemoryJobs();
    results = new MemoryResultsStore({ jobs });
    exports = new MemoryExports();
  };

  it('labels a batch, turning a corrupt or vanished image into a failed result with its reason', async () => {
    reset();
    const good = [await put('a.png', 0), await put('b.png', 1), await put('c.png', 2)];
    const corrupt = s3.put('images', 'corrupt.png', (await sample(3)).subarray(0, 60));
    const vanished = { bucket: 'images', key: 'gone.png', eTag: 'e', size: 3 };
    const report = await classifyRecords([message(good), message([corrupt, vanished])], deps());
    assert.deepEqual(report.failedMessageIds, [], 'nothing for the queue to retry');
    assert.equal(report.counts.labeled, 3);
    assert.equal(report.counts.failed, 2);
    for (const ref of good) {
      const [r] = await results.getByImage('images', ref.key);
      assert.equal(r?.status, 'ok', ref.key);
      assert.equal(r?.eTag, ref.eTag);
      assert.ok((r?.labels.length ?? 0) > 0 && (r?.labels[0]?.score ?? 0) > 0, ref.key);
    }
    const [bad] = await results.getByImage('images', 'corrupt.png');
    assert.equal(bad?.status, 'failed');
    assert.equal(bad?.error?.code, 'image/decode-failed', bad?.error?.message);
    const [gone] = await results.getByImage('images', 'gone.png');
    assert.equal(gone?.error?.code, 'object/not-found');
    const lines = [...exports.objects.values()].flat().map((l) => JSON.parse(l) as { key: string });
    assert.deepEqual(lines.map((l) => l.key).sort(), ['a.png', 'b.png', 'c.png', 'corrupt.png', 'gone.png']);
  });

  it('labels a redelivered message nothing twice: no model run, no second result, the job counted once', async () => {
    reset();
    const { record } = await jobs.create(
      { bucket: 'images', prefix: '', target: 'lambda', mode: 'stale' },
      { id: 'x', version: '1' },
    );
    await jobs.recordPlanned(record.jobId, 0, 2, true);
    const refs = [await put('a.png', 0), await put('b.png', 1)];
    const delivery = message(refs, { job: { jobId: record.jobId, mode: 'stale' } });
    // Delivered twice in its first batch already: each image goes through the model once.
    const first = await classifyRecords([delivery, delivery], deps());
    assert.deepEqual([first.counts.inferred, first.counts.labeled, first.counts.duplicates], [2, 2, 2]);
    const stored = await results.getByImage('images', 'a.png');
    assert.equal((await jobs.get(record.jobId))?.status, 'succeeded');
    // Delivered again later, twice in one batch.
    const again = await classifyRecords([delivery, delivery], deps({ now: () => new Date('2030-01-01') }));
    assert.equal(again.counts.inferred, 0);
    assert.equal(again.counts.labeled, 0);
    assert.equal(again.counts.duplicates, 4);
    assert.deepEqual(await results.getByImage('images', 'a.png'), stored, 'the first result stands');
    const job = await jobs.get(record.jobId);
    assert.deepEqual([job?.labeled, job?.skipped, job?.total], [2, 0, 2]);
  });

  it('keeps the newest upload: an older event delivered late changes nothing', async () => {
    reset();
    const v1 = await put('same.png', 0);
    const old = message([v1], { sequencer: '10' });
    const v2 = await put('same.png', 1); // overwritten before the first event was handled
    const report = await classifyRecords([message([v2], { sequencer: '11' }), old], deps());
    assert.equal(report.counts.labeled, 1);
    assert.equal(report.counts.superseded, 1, "the old event's object has changed");
    const [r] = await results.getByImage('images', 'same.png');
    assert.equal(r?.eTag, v2.eTag);
  });

  it('sends a message back on a transient read or store failure, and stores a failed result for a permanent store refusal (faults injected)', async () => {
    reset();
    const refs = [
      await put('ok.png', 0),
      await put('slow-s3.png', 1),
      await put('slow-db.png', 2),
      await put('huge.png', 3),
    ];
    s3.faults.set('images/slow-s3.png', new TransientError('aws/throttled', 'S3 throttled (injected)'));
    // The store refuses one result for a moment and one for good: faults DynamoDB Local cannot be asked for.
    const flaky: ResultsStore = {
      findExisting: (images, model) => results.findExisting(images, model),
      put: () => Promise.reject(new Error('classifyRecords writes with putAll')),
      getByImage: (bucket, key) => results.getByImage(bucket, key),
      queryByLabel: (query) => results.queryByLabel(query),
      putAll: async (writes: Parameters<ResultsStore['putAll']>[0]) => {
        const settled = await results.putAll(
          writes.filter((w) => !/slow-db|huge/.test(w.result.key) || w.result.status === 'failed'),
        );
        return writes.map((w) => {
          if (w.result.key === 'slow-db.png') {
            return {
              status: 'rejected',
              reason: new TransientError('dynamodb/throttled', 'throttled (injected)'),
            } as const;
          }
          if (w.result.key === 'huge.png' && w.result.status === 'ok') {
            return {
              status: 'rejected',
              reason: new LabelerError('aws/invalid-request', 'item too large (injected)'),
            } as const;
          }
          return settled.shift() as PromiseSettledResult<'written' | 'duplicate'>;
        });
      },
    };
    const messages = refs.map((r) => message([r]));
    const report = await classifyRecords(messages, deps({ results: flaky }));
    assert.deepEqual(report.failedMessageIds.sort(), [messages[1]?.messageId, messages[2]?.messageId].sort());
    assert.equal(report.counts.retried, 2);
    assert.equal((await results.getByImage('images', 'ok.png'))[0]?.status, 'ok');
    assert.deepEqual(await results.getByImage('images', 'slow-s3.png'), []);
    assert.deepEqual(await results.getByImage('images', 'slow-db.png'), []);
    const [huge] = await results.getByImage('images', 'huge.png');
    assert.equal(huge?.status, 'failed');
    assert.equal(huge?.error?.code, 'result/not-storable');
    // The retried messages succeed once the faults clear.
    s3.faults.clear();
    const retry = await classifyRecords([messages[1] as QueueRecord, messages[2] as QueueRecord], deps());
    assert.deepEqual(retry.failedMessageIds, []);
    assert.equal(retry.counts.labeled, 2);
  });

  it("records a job's image failed on its message's last receive, and drops a cancelled job's images", async () => {
    reset();
    const model = { id: 'x', version: '1' };
    const { record: job } = await jobs.create(
      { bucket: 'images', prefix: '', target: 'lambda', mode: 'all' },
      model,
    );
    await jobs.recordPlanned(job.jobId, 0, 1, true);
    const ref = await put('stuck.png', 0);
    s3.faults.set('images/stuck.png', new TransientError('aws/throttled', 'S3 throttled (injected)'));
    const tag = { jobId: job.jobId, mode: 'all' as const };
    const early = await classifyRecords(
      [message([ref], { job: tag, receives: 2 })],
      deps({ maxReceiveCount: 3 }),
    );
    assert.equal(early.failedMessageIds.length, 1);
    assert.equal((await jobs.get(job.jobId))?.status, 'running', 'not the last receive: nothing recorded');
    const last = message([ref], { job: tag, receives: 3 });
    const report = await classifyRecords([last], deps({ maxReceiveCount: 3 }));
    assert.deepEqual(report.failedMessageIds, [last.messageId], 'still goes to the dead-letter queue');
    const done = await jobs.get(job.jobId);
    assert.deepEqual([done?.status, done?.failed], ['succeeded', 1]);
    const markers = [];
    for await (const m of jobs.markers(job.jobId)) markers.push(m);
    assert.equal(markers[0]?.error?.code, 'queue/retries-exhausted');
    assert.match(markers[0]?.error?.message ?? '', /aws\/throttled/);

    const { record: other } = await jobs.create(
      { bucket: 'images', prefix: '', target: 'lambda', mode: 'all' },
      model,
    );
    await jobs.recordPlanned(other.jobId, 0, 1, true);
    await jobs.cancel(other.jobId);
    const fine = await put('fine.png', 1);
    const dropped = await classifyRecords(
      [message([fine], { job: { jobId: other.jobId, mode: 'all' } })],
      deps(),
    );
    assert.deepEqual([dropped.counts.cancelled, dropped.counts.inferred], [1, 0]);
    assert.deepEqual(await results.getByImage('images', 'fine.png'), []);
    const cancelled = await jobs.get(other.jobId);
    assert.deepEqual([cancelled?.status, cancelled?.cancelled], ['cancelled', 1]);
  });
});
