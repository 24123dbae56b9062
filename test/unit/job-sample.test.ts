import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CODE } from '../../shared/error-codes.ts';
import { LabelerError } from '../../shared/errors.ts';
import { countJobImages } from '../../shared/labeling/job-estimate.ts';
import { type PlanOutcome, planStep, startJob } from '../../shared/labeling/plan-job.ts';
import { inSample, parseSample, rankOf, resolveSample } from '../../shared/labeling/sample.ts';
import { MemoryJobs, MemoryS3, memoryPlanPorts } from '../helpers/memory-ports.ts';

const bucket = 'labeler-images';
const model = { id: 'test-model', version: '1' };
const onePage = { pageSize: 100, stepBudgetMs: 60_000, maxPagesPerStep: 1, predecessorWaitMs: 0 };
const KEYS = Array.from({ length: 1000 }, (_, i) => `set/${String(i).padStart(4, '0')}.jpg`);

/** A prefix of 1,000 objects (and a folder marker) listed in 10 pages of 100. */
function stack() {
  const s3 = new MemoryS3();
  for (const key of [...KEYS, 'set/folder/', 'other/x.jpg']) s3.put(bucket, key, Buffer.from(key));
  const jobs = new MemoryJobs();
  return { s3, jobs, ports: memoryPlanPorts(s3, jobs, model) };
}

/** Starts a job and runs its plan steps one page each; returns the keys it enqueued. */
async function planSample(
  setup: ReturnType<typeof stack>,
  sample: { count: number; seed: number } | { percent: number; seed: number },
): Promise<{ jobId: string; keys: string[]; steps: PlanOutcome[] }> {
  const { ports } = setup;
  ports.queues.lambda.length = 0;
  const { jobId } = await startJob({ bucket, prefix: 'set/', target: 'lambda', mode: 'all', sample }, ports);
  const steps: PlanOutcome[] = [];
  for (let m = ports.planQueue.shift(); m; m = ports.planQueue.shift())
    steps.push(await planStep(m.body, ports, onePage));
  const keys = ports.queues.lambda.flatMap((m) =>
    (JSON.parse(m.body) as { Records: Array<{ s3: { object: { key: string } } }> }).Records.map((r) =>
      decodeURIComponent(r.s3.object.key),
    ),
  );
  return { jobId, keys: keys.sort(), steps };
}

describe('jobs start --sample: a deterministic sample decided one key at a time (decision 0036)', () => {
  it('a count plans exactly n objects, the same n on a rerun, drawn from every page of the listing', async () => {
    const setup = stack();
    const first = await planSample(setup, { count: 50, seed: 0 });
    assert.equal(first.keys.length, 50);
    assert.equal(new Set(first.keys).size, 50, 'each object once');
    assert.ok(
      first.keys.every((k) => KEYS.includes(k)),
      'no folder marker, nothing outside the prefix',
    );
    const planned = first.steps.filter((s) => s.kind === 'planned');
    assert.equal(planned.length, 11, 'ten pages of 100 and the folder marker: one step per page');
    const perPage = planned.slice(0, 10).map((s) => (s.kind === 'planned' ? s.objects : 0));
    assert.ok(
      perPage.every((n) => n > 0),
      `every page gives some of the sample, not the first page all of it: ${perPage}`,
    );
    const job = await setup.jobs.get(first.jobId);
    assert.equal(job?.total, 50, "the job's total is the sample");
    assert.deepEqual(
      job?.sample && { count: 'count' in job.sample ? job.sample.count : 0, seed: job.sample.seed },
      { count: 50, seed: 0 },
      'the job record carries the sample',
    );
    const rerun = await planSample(setup, { count: 50, seed: 0 });
    assert.notEqual(rerun.jobId, first.jobId);
    assert.deepEqual(rerun.keys, first.keys, 'the same 50 objects on a rerun');
  });

  it('another seed draws another sample; samples of one seed nest; n over the prefix takes it all', async () => {
    const setup = stack();
    const seed0 = (await planSample(setup, { count: 50, seed: 0 })).keys;
    const seed7 = (await planSample(setup, { count: 50, seed: 7 })).keys;
    assert.equal(seed7.length, 50);
    assert.ok(seed7.filter((k) => seed0.includes(k)).length < 25, 'mostly other objects');
    const hundred = (await planSample(setup, { count: 100, seed: 0 })).keys;
    assert.ok(
      seed0.every((k) => hundred.includes(k)),
      'the 50 of a seed are among its 100',
    );
    const all = (await planSample(setup, { count: 5000, seed: 0 })).keys;
    assert.deepEqual(all, KEYS, 'a sample larger than the prefix is the prefix');
  });

  it('a percentage selects by hash alone: about that share, deterministic, the count estimate agrees', async () => {
    const setup = stack();
    const a = (await planSample(setup, { percent: 10, seed: 3 })).keys;
    const b = (await planSample(setup, { percent: 10, seed: 3 })).keys;
    assert.deepEqual(a, b);
    // Binomial(1000, 0.1): 100 ± 9.5; 60..140 is over four standard deviations.
    assert.ok(a.length > 60 && a.length < 140, `about 10 % of 1,000: ${a.length}`);
    const resolved = await resolveSample({ percent: 10, seed: 3 }, async function* () {
      yield* [];
    });
    assert.deepEqual(
      KEYS.filter((k) => inSample(resolved, k)),
      a,
      'the same rule per key, no listing needed',
    );
    const everything = (await planSample(setup, { percent: 100, seed: 3 })).keys;
    assert.deepEqual(everything, KEYS);
  });

  it('the dry-run count counts the sample, in mode all and, among the sample, in mode stale', async () => {
    const setup = stack();
    const ports = {
      async *listPages() {
        let token: string | undefined;
        do {
          const page = setup.s3.listPage(bucket, 'set/', token, 100);
          yield page.objects;
          token = page.next;
        } while (token);
      },
      // Mode stale: the even-numbered objects are labeled already.
      async countLabeled(objects: readonly { key: string }[]) {
        return objects.filter((o) => Number(o.key.slice(4, 8)) % 2 === 0).length;
      },
    };
    const all = await countJobImages(ports, { mode: 'all', sample: { count: 50, seed: 0 } });
    assert.deepEqual([all.objects, all.images, all.complete], [1000, 50, true]);
    const capped = await countJobImages(ports, { mode: 'all', atMost: 200, sample: { count: 50, seed: 0 } });
    assert.deepEqual(
      [capped.images, capped.complete],
      [50, true],
      'a count lists the whole prefix for its bound anyway: never "at least"',
    );
    const share = await countJobImages(ports, { mode: 'all', atMost: 200, sample: { percent: 10, seed: 0 } });
    assert.deepEqual([share.objects, share.complete], [200, false], 'a percentage keeps the listing limit');
    const planned = (await planSample(setup, { count: 50, seed: 0 })).keys;
    const stale = await countJobImages(ports, { mode: 'stale', sample: { count: 50, seed: 0 } });
    assert.equal(stale.images, planned.filter((k) => Number(k.slice(4, 8)) % 2 === 1).length);
  });

  it('ranks order by hash then key; the bound of a count is its n-th smallest rank', async () => {
    const ranks = KEYS.map((k) => rankOf(0, k)).sort();
    const resolved = await resolveSample({ count: 10, seed: 0 }, async function* () {
      for (let i = 0; i < KEYS.length; i += 100) yield KEYS.slice(i, i + 100);
    });
    assert.equal(resolved.bound, ranks[9]);
    assert.equal(KEYS.filter((k) => inSample(resolved, k)).length, 10);
  });

  it('on the gpu target the same sample goes to the GPU queue', async () => {
    const setup = stack();
    const lambda = (await planSample(setup, { count: 30, seed: 5 })).keys;
    const { ports } = setup;
    await startJob(
      { bucket, prefix: 'set/', target: 'gpu', mode: 'all', sample: { count: 30, seed: 5 } },
      ports,
    );
    for (let m = ports.planQueue.shift(); m; m = ports.planQueue.shift())
      await planStep(m.body, ports, onePage);
    const gpu = ports.queues.gpu
      .flatMap((m) =>
        (JSON.parse(m.body) as { Records: Array<{ s3: { object: { key: string } } }> }).Records.map((r) =>
          decodeURIComponent(r.s3.object.key),
        ),
      )
      .sort();
    assert.equal(gpu.length, 30);
    assert.deepEqual(gpu, lambda);
  });

  it('parses --sample 50 and 5%, refusing anything else with job/invalid-sample', () => {
    assert.deepEqual(parseSample('50'), { count: 50, seed: 0 });
    assert.deepEqual(parseSample('5%', '42'), { percent: 5, seed: 42 });
    assert.deepEqual(parseSample('0.5%'), { percent: 0.5, seed: 0 });
    for (const [size, seed] of [
      ['0', undefined],
      ['-3', undefined],
      ['0%', undefined],
      ['101%', undefined],
      ['1.5', undefined],
      ['ten', undefined],
      ['5', 'x'],
      ['5', '-1'],
    ] as const) {
      assert.throws(
        () => parseSample(size, seed),
        (e: unknown) => e instanceof LabelerError && e.code === CODE.job.invalidSample,
        `${size} ${seed}`,
      );
    }
  });

  it('a request with a malformed sample is refused before a job exists', async () => {
    const setup = stack();
    await assert.rejects(
      startJob(
        { bucket, prefix: 'set/', target: 'lambda', mode: 'all', sample: { count: 0, seed: 0 } },
        setup.ports,
      ),
      (e: unknown) => e instanceof LabelerError && e.code === CODE.job.invalidRequest,
    );
    assert.deepEqual(await setup.jobs.list(10), []);
  });
});
