import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, beforeEach, describe, it } from 'node:test';
import type { LabelerError } from '../../shared/errors.ts';
import { classifyRecords } from '../../shared/labeling/classify-records.ts';
import { createImageLabeler } from '../../shared/labeling/create-labeler.ts';
import type { ImageLabeler } from '../../shared/labeling/image-labeler.ts';
import type { Job, JobsService } from '../../shared/labeling/jobs.ts';
import { jobsService } from '../../shared/labeling/jobs-service.ts';
import { planStep } from '../../shared/labeling/plan-job.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import {
  MemoryExports,
  MemoryJobs,
  MemoryResultsStore,
  MemoryS3,
  memoryPlanPorts,
} from '../helpers/memory-ports.ts';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const bucket = 'images';

describe('the jobs service end to end on in-memory ports and the bundled model: start, plan, label, count', () => {
  let labeler: ImageLabeler;
  let s3: MemoryS3;
  let jobs: MemoryJobs;
  let results: MemoryResultsStore;
  let ports: ReturnType<typeof memoryPlanPorts>;
  let service: JobsService;

  before(async () => {
    labeler = await createImageLabeler({
      modelDir: DEFAULT_MODEL_DIR,
      intraOpThreads: 1,
      concurrency: 2,
      batchSize: 8,
    });
  });
  beforeEach(async () => {
    s3 = new MemoryS3();
    jobs = new MemoryJobs();
    results = new MemoryResultsStore({ jobs });
    const model = { id: labeler.classifier.manifest.id, version: labeler.classifier.manifest.version };
    ports = memoryPlanPorts(s3, jobs, model, 4);
    service = jobsService({
      plan: ports,
      store: jobs,
      results,
      readableBuckets: [bucket],
      gpuWorkers: false,
    });
    for (let i = 0; i < 9; i++) {
      s3.put(bucket, `set/${i}.png`, await readFile(join(DEFAULT_MODEL_DIR, 'samples', `test-0000${i}.png`)));
    }
  });

  /** The plan-job function: every plan message, one page a step. */
  const plan = async () => {
    for (let m = ports.planQueue.shift(); m; m = ports.planQueue.shift()) {
      await planStep(m.body, ports, { pageSize: 5, stepBudgetMs: 60_000, maxPagesPerStep: 1 });
    }
  };
  /** The classify function over the jobs queue, delivering each message `times` times. */
  const label = async (times = 1) => {
    const messages = ports.queues.lambda.splice(0);
    for (let t = 0; t < times; t++) {
      const report = await classifyRecords(messages, {
        labeler,
        images: s3,
        results,
        exports: new MemoryExports(),
        jobs,
        log: quiet,
      });
      assert.deepEqual(report.failedMessageIds, []);
    }
  };
  const counts = (j: Job | undefined) => [
    j?.status,
    j?.total,
    j?.labeled,
    j?.failed,
    j?.skipped,
    j?.cancelled,
  ];

  it('counts every image once, under redelivery, until the counts reach the total and the job succeeds', async () => {
    s3.put(bucket, 'set/broken.png', Buffer.from('not an image at all'));
    const started = await service.start({ bucket, prefix: 'set/', target: 'lambda', mode: 'all' });
    assert.equal(started.status, 'planning');
    await plan();
    assert.deepEqual(counts(await service.get(started.jobId)), ['running', 10, 0, 0, 0, 0]);
    await label(2);
    assert.deepEqual(counts(await service.get(started.jobId)), ['succeeded', 10, 9, 1, 0, 0]);
    const failures = [];
    for await (const f of service.failures(started.jobId)) failures.push(f);
    assert.deepEqual(
      failures.map((f) => [f.key, f.error.code]),
      [['set/broken.png', 'image/unsupported-format']],
    );
    const written = [];
    for await (const r of service.results(started.jobId)) written.push(r.key);
    assert.equal(written.length, 10);

    // The same folder again: mode stale skips everything, mode all labels everything again.
    const stale = await service.start({ bucket, prefix: 'set/', target: 'lambda', mode: 'stale' });
    await plan();
    await label();
    assert.deepEqual(counts(await service.get(stale.jobId)), ['succeeded', 10, 0, 0, 10, 0]);
    const all = await service.start({ bucket, prefix: 'set/', target: 'lambda', mode: 'all' });
    await plan();
    await label(2);
    assert.deepEqual(counts(await service.get(all.jobId)), ['succeeded', 10, 9, 1, 0, 0]);
    assert.deepEqual(
      (await service.list()).map((j) => j.jobId),
      [all.jobId, stale.jobId, started.jobId],
      'newest first',
    );
  });

  it('cancel mid-job: images already enqueued are dropped as cancelled and the job ends cancelled', async () => {
    const job = await service.start({ bucket, prefix: 'set/', target: 'lambda', mode: 'all' });
    await planStep(ports.planQueue.shift()?.body ?? '', ports, {
      pageSize: 5,
      stepBudgetMs: 60_000,
      maxPagesPerStep: 1,
    });
    const cancelling = await service.cancel(job.jobId);
    assert.deepEqual(counts(cancelling), ['cancelling', 5, 0, 0, 0, 0]);
    assert.equal(cancelling.finishedAt, undefined);
    await plan();
    await label();
    const done = await service.get(job.jobId);
    assert.deepEqual(counts(done), ['cancelled', 5, 0, 0, 0, 5]);
    assert.ok(done?.finishedAt);
    assert.equal((await service.cancel(job.jobId)).status, 'cancelled', 'cancelling again changes nothing');
    assert.deepEqual(await results.getByImage(bucket, 'set/0.png'), [], 'nothing labeled');
  });

  it('refuses what cannot run: an unreadable bucket, a GPU job without a GPU worker, an unknown or finished job', async () => {
    await assert.rejects(
      service.start({ bucket: 'elsewhere', prefix: '', target: 'lambda', mode: 'all' }),
      (e: LabelerError) => e.code === 'job/bucket-not-readable',
    );
    await assert.rejects(
      service.start({ bucket, prefix: '', target: 'gpu', mode: 'all' }),
      (e: LabelerError) => e.code === 'job/no-gpu-worker',
    );
    assert.deepEqual(ports.planQueue, [], 'nothing was planned');
    await assert.rejects(service.cancel('j-doesnotexist'), (e: LabelerError) => e.code === 'job/not-found');
    const job = await service.start({ bucket, prefix: 'set/', target: 'lambda', mode: 'all' });
    await plan();
    await label();
    await assert.rejects(service.cancel(job.jobId), (e: LabelerError) => e.code === 'job/not-cancellable');
  });
});
