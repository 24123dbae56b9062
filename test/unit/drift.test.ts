import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  driftReport,
  jensenShannon,
  shares,
  summarize,
  tallyOf,
  topOfResult,
} from '../../shared/labeling/drift.ts';
import type { Job } from '../../shared/labeling/jobs.ts';
import { DRIFT } from '../../shared/settings.ts';
import { MemoryJobs } from '../helpers/memory-ports.ts';

const close = (actual: number | undefined, expected: number, what: string) =>
  assert.ok(actual !== undefined && Math.abs(actual - expected) < 1e-12, `${what}: ${actual} ≠ ${expected}`);

describe('Jensen–Shannon divergence of top-1 histograms (base 2)', () => {
  it('is 0 for the same shares, whatever the counts, and 1 for histograms with no label in common', () => {
    assert.equal(jensenShannon({ Bag: 2, Shirt: 2 }, { Bag: 5, Shirt: 5 }), 0);
    assert.equal(jensenShannon({ Bag: 3 }, { Shirt: 7 }), 1);
  });

  it('matches values computed by hand', () => {
    // P = (1/2, 1/2), Q = (1, 0), M = (3/4, 1/4):
    // KL(P‖M) = ½·log2(2/3) + ½·log2(2) = 0.2075187496…, KL(Q‖M) = log2(4/3) = 0.4150374992…
    // JSD = (0.2075187496 + 0.4150374992) / 2 = 0.3112781244…
    close(jensenShannon({ Bag: 1, Shirt: 1 }, { Bag: 4 }), 0.31127812445913283, 'half and half vs all Bag');
    // P = (0.8, 0.2), Q = (0.2, 0.8), M = (0.5, 0.5): each KL = 0.8·log2(1.6) + 0.2·log2(0.4)
    // = 0.8 × 0.6780719051 + 0.2 × (−1.3219280949) = 0.2780719051, so JSD = 0.2780719051…
    close(jensenShannon({ a: 8, b: 2 }, { a: 2, b: 8 }), 0.2780719051126377, 'mirrored 80/20');
  });

  it('is symmetric and stays in [0, 1] with labels only one side has', () => {
    const p = { Bag: 8, Shirt: 40, Sandal: 52 };
    const q = { Bag: 40, Shirt: 30, Sneaker: 30 };
    assert.equal(jensenShannon(p, q), jensenShannon(q, p));
    const d = jensenShannon(p, q);
    assert.ok(d > 0 && d < 1, String(d));
  });

  it('flags "Bag" from 8 % to 40 % of ten labels over the threshold, 8 % to 20 % under it (the threshold’s reason)', () => {
    const before: Record<string, number> = { Bag: 8 };
    const bag40: Record<string, number> = { Bag: 40 };
    const bag20: Record<string, number> = { Bag: 20 };
    for (let i = 1; i < 10; i++) {
      before[`l${i}`] = 92 / 9;
      bag40[`l${i}`] = 60 / 9;
      bag20[`l${i}`] = 80 / 9;
    }
    assert.ok(jensenShannon(before, bag40) > DRIFT.threshold);
    assert.ok(jensenShannon(before, bag20) < DRIFT.threshold);
  });
});

describe('a job’s top-1 tally and summary', () => {
  it('counts labels, the mean top-1 score and the share under 0.5', () => {
    const tally = tallyOf([
      { label: 'Bag', score: 0.9 },
      { label: 'Bag', score: 0.3 },
      { label: 'Shirt', score: 0.5 },
      { label: 'Coat', score: 0.2 },
    ]);
    assert.deepEqual(summarize(tally), {
      images: 4,
      top1: { Bag: 2, Coat: 1, Shirt: 1 },
      meanTop1Score: (0.9 + 0.3 + 0.5 + 0.2) / 4,
      shareUnderHalf: 0.5,
    });
    assert.equal(summarize(tallyOf([])), undefined, 'nothing labeled: no summary');
    assert.deepEqual(shares({ Bag: 1, Shirt: 3 }), { Bag: 0.25, Shirt: 0.75 });
  });

  it('takes an ok result’s first label, none of a failed one', () => {
    assert.deepEqual(
      topOfResult({ status: 'ok', labels: [{ label: 'Bag', score: 0.7, rank: 1 } as never] }),
      { label: 'Bag', score: 0.7 },
    );
    assert.equal(topOfResult({ status: 'failed', labels: [] }), undefined);
  });
});

describe('a schedule’s drift report and metric', () => {
  const job = (jobId: string, createdAt: string, top1?: Record<string, number>): Job =>
    ({
      jobId,
      status: top1 ? 'succeeded' : 'running',
      createdAt,
      ...(top1
        ? {
            finishedAt: createdAt,
            labelSummary: {
              images: Object.values(top1).reduce((a, b) => a + b, 0),
              top1,
              meanTop1Score: 0.8,
              shareUnderHalf: 0.1,
            },
          }
        : {}),
    }) as unknown as Job;

  it('compares every run with the baseline, oldest first, over threshold or not', () => {
    const runs = [
      job('j-3', '2026-01-03', { Bag: 10 }),
      job('j-1', '2026-01-01', { Bag: 1, Shirt: 1 }),
      job('j-2', '2026-01-02', { Bag: 2, Shirt: 2 }),
      job('j-4', '2026-01-04'),
    ];
    const report = driftReport('nightly', runs, runs[1] as Job, { threshold: DRIFT.threshold });
    assert.deepEqual(
      report.runs.map((r) => [r.jobId, r.baseline, r.divergence, r.overThreshold]),
      [
        ['j-1', true, 0, false],
        ['j-2', false, 0, false],
        ['j-3', false, 0.31127812445913283, true],
        ['j-4', false, undefined, undefined],
      ],
    );
    assert.deepEqual(report.runs[2]?.labels, [
      { label: 'Bag', baseline: 0.5, run: 1 },
      { label: 'Shirt', baseline: 0.5, run: 0 },
    ]);
    assert.deepEqual(
      driftReport('nightly', runs, runs[1] as Job, { threshold: 0.05, limit: 2 }).runs.map((r) => r.jobId),
      ['j-3', 'j-4'],
    );
  });

  it('a scheduled job’s finish sends its divergence from the first finished run; that run sends 0', async () => {
    const sent: Array<[string, number]> = [];
    const jobs = new MemoryJobs({ driftMetric: (schedule, value) => void sent.push([schedule, value]) });
    const run = async (keys: Record<string, string>, scheduleName?: string) => {
      const { jobId } = (
        await jobs.create(
          {
            bucket: 'b',
            prefix: 'p/',
            target: 'lambda',
            mode: 'all',
            ...(scheduleName ? { scheduleName } : {}),
          },
          { id: 'm', version: '1' },
        )
      ).record;
      await jobs.recordPlanned(jobId, 0, Object.keys(keys).length, true);
      for (const [key, label] of Object.entries(keys)) {
        await jobs.record(jobId, { bucket: 'b', key }, 'labeled', undefined, { label, score: 0.9 });
      }
      await jobs.checkCompletion(jobId);
      await jobs.checkCompletion(jobId);
      return jobId;
    };
    const first = await run({ a: 'Bag', b: 'Shirt' }, 'nightly');
    await run({ a: 'Bag', b: 'Bag', c: 'Bag', d: 'Bag' }, 'nightly');
    await run({ a: 'Coat' });
    assert.deepEqual(
      sent,
      [
        ['nightly', 0],
        ['nightly', 0.31127812445913283],
      ],
      'once per finished scheduled run; an unscheduled job sends none',
    );
    assert.equal(await jobs.scheduleBaseline('nightly'), first);
  });
});
