import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LabelerError } from '../../shared/errors.ts';
import { assertOverlap, type Comparison, compareResults } from '../../shared/labeling/compare.ts';
import { formatComparison } from '../../shared/labeling/compare-format.ts';
import {
  type ModelChoice,
  readResultsFile,
  resolveModelChoice,
  resultPairs,
} from '../../shared/labeling/compare-read.ts';
import type { EvaluatedResult } from '../../shared/labeling/evaluate.ts';
import { parseTruthCsv, TruthSet } from '../../shared/labeling/ground-truth.ts';
import type { ImageResult, ModelRef } from '../../shared/labeling/results.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';

const close = (actual: number | null | undefined, expected: number, what: string) =>
  assert.ok(
    actual !== null && actual !== undefined && Math.abs(actual - expected) < 1e-9,
    `${what}: ${actual} != ${expected}`,
  );

const CLASSES = ['cat', 'dog', 'fox'];
const A: ModelChoice = { name: 'a@1', ref: { id: 'a', version: '1' }, classes: CLASSES };
const B: ModelChoice = { name: 'b@1', ref: { id: 'b', version: '1' }, classes: CLASSES };

const ok = (key: string, ...labels: Array<[string, number]>): EvaluatedResult => ({
  image: { key },
  status: 'ok',
  labels: labels.map(([label, score]) => ({ label, score })),
});
const failed = (key: string): EvaluatedResult => ({ image: { key }, status: 'failed', labels: [] });

/**
 * Ten images, every number below computed by hand. Compared (both ok): i1, i2, i3, i4, i5,
 * i10. i1, i3, i5 agree; i2 dog→cat, i4 fox→dog (fox is outside B's labels), i10 cat→dog.
 * i6: A failed; i7: only A; i8: only B; i9: both failed. i5 has no truth.
 */
function handSet(): { a: EvaluatedResult[]; b: EvaluatedResult[]; truth: TruthSet } {
  const a = [
    ok('i1', ['cat', 0.9], ['dog', 0.05]),
    ok('i2', ['dog', 0.6], ['cat', 0.3]),
    ok('i3', ['cat', 0.55], ['fox', 0.4]),
    ok('i4', ['fox', 0.7], ['cat', 0.2]),
    ok('i5', ['dog', 0.4], ['cat', 0.3]),
    failed('i6'),
    ok('i7', ['cat', 0.9]),
    failed('i9'),
    ok('i10', ['cat', 0.8], ['dog', 0.1]),
  ];
  const b = [
    ok('i10', ['dog', 0.6], ['cat', 0.3]),
    ok('i1', ['cat', 0.8], ['dog', 0.1]),
    ok('i2', ['cat', 0.7], ['dog', 0.2]),
    ok('i3', ['cat', 0.45], ['fox', 0.44]),
    ok('i4', ['dog', 0.9], ['cat', 0.05]),
    ok('i5', ['dog', 0.6], ['cat', 0.3]),
    ok('i6', ['cat', 0.5]),
    ok('i8', ['cat', 0.5]),
    failed('i9'),
  ];
  const truth = new TruthSet(parseTruthCsv('i1,cat\ni2,cat\ni3,fox\ni4,dog\ni10,cat\n', 'hand.csv'));
  return { a, b, truth };
}

function handComparison(): Comparison {
  const { a, b, truth } = handSet();
  return compareResults({ model: A, results: a }, { model: B, results: b }, { truth, top: 3 });
}

describe('compare: two models over the same images', () => {
  it('counts what each model has, what both have, what failed, and what was compared', () => {
    assert.deepEqual(handComparison().images, {
      a: 9,
      b: 9,
      both: 8,
      onlyA: 1,
      onlyB: 1,
      aFailed: 1,
      bFailed: 0,
      bothFailed: 1,
      compared: 6,
    });
  });

  it('gives top-1 agreement and the A→B transition matrix, whose diagonal is the agreement', () => {
    const c = handComparison();
    assert.deepEqual(c.agreement, { agree: 3, rate: 0.5 });
    assert.deepEqual(c.transitions.labels, CLASSES);
    assert.deepEqual(c.transitions.matrix, [
      [2, 1, 0],
      [1, 1, 0],
      [0, 1, 0],
    ]);
  });

  it("summarizes the top-1 score change and the change of A's label's score, in bins", () => {
    const { top1, aLabel } = handComparison().scoreChanges;
    assert.equal(top1.images, 6);
    close(top1.mean, 0.1 / 6, 'mean');
    close(top1.median, 0, 'median');
    close(top1.min, -0.2, 'min');
    close(top1.max, 0.2, 'max');
    assert.equal(top1.bins.length, 20);
    const nonEmpty = (bins: typeof top1.bins) =>
      bins.filter((b) => b.images > 0).map((b) => [b.from, b.to, b.images]);
    assert.deepEqual(nonEmpty(top1.bins), [
      [-0.2, -0.1, 1],
      [-0.1, 0, 2],
      [0.1, 0.2, 1],
      [0.2, 0.3, 2],
    ]);
    // B's score of A's label minus A's: -0.1, -0.4, -0.1, -0.7 (fox outside B's labels: 0), +0.2, -0.5.
    assert.equal(aLabel.outsideBTopK, 1);
    close(aLabel.min, -0.7, 'min');
    close(aLabel.max, 0.2, 'max');
    close(aLabel.mean, (-0.1 - 0.4 - 0.1 - 0.7 + 0.2 - 0.5) / 6, 'mean');
    assert.deepEqual(nonEmpty(aLabel.bins), [
      [-0.7, -0.6, 1],
      [-0.5, -0.4, 1],
      [-0.4, -0.3, 1],
      [-0.1, 0, 2],
      [0.2, 0.3, 1],
    ]);
  });

  it('lists the images that fall under the threshold, counts those that rise to it, and ranks the most changed', () => {
    const c = handComparison();
    assert.deepEqual(
      c.threshold.newlyUnder.map((i) => i.image.key),
      ['i3'],
    );
    assert.equal(c.threshold.newlyOver, 1);
    assert.deepEqual(
      c.changed.map((i) => [i.image.key, i.a.label, i.b.label, i.bScoreOfA, i.change]),
      [
        ['i4', 'fox', 'dog', null, 0.7],
        ['i10', 'cat', 'dog', 0.3, 0.5],
        ['i2', 'dog', 'cat', 0.2, 0.4],
      ],
    );
    const higher = compareResults(
      { model: A, results: handSet().a },
      { model: B, results: handSet().b },
      { threshold: 0.65 },
    );
    // A >= 0.65 and B < 0.65: i10 (0.8 → 0.6); i4 rises 0.7 → 0.9 and stays; i2 rises to 0.7.
    assert.deepEqual(
      higher.threshold.newlyUnder.map((i) => i.image.key),
      ['i10'],
    );
    assert.equal(higher.threshold.newlyOver, 1);
    assert.equal(higher.truth, undefined);
  });

  it('with truth: accuracy of both per class and overall, the difference, and who is right where', () => {
    const t = handComparison().truth;
    assert.ok(t);
    assert.equal(t.images, 5);
    assert.equal(t.withoutTruth, 1);
    assert.deepEqual(t.a, { correct: 2, accuracy: 0.4 });
    assert.deepEqual(t.b, { correct: 3, accuracy: 0.6 });
    close(t.difference, 0.2, 'difference');
    assert.deepEqual(
      t.classes.map((k) => [k.label, k.support, k.aCorrect, k.bCorrect, k.difference]),
      [
        ['cat', 3, 2, 2, 0],
        ['dog', 1, 0, 1, 1],
        ['fox', 1, 0, 0, 0],
      ],
    );
    assert.deepEqual(
      t.fixed.map((f) => f.image.key),
      ['i2', 'i4'],
    );
    assert.deepEqual(
      t.broken.map((f) => [f.image.key, f.truth, f.a.label, f.b.label]),
      [['i10', 'cat', 'cat', 'dog']],
    );
    assert.equal(t.bothWrong, 1);
  });

  it('gives the same report whatever order the results come in', () => {
    const { a, b, truth } = handSet();
    const reversed = compareResults(
      { model: A, results: [...a].reverse() },
      { model: B, results: [...b].reverse() },
      { truth, top: 3 },
    );
    assert.deepEqual(reversed, handComparison());
  });

  it('refuses an image twice in one set, and a comparison with nothing in common', () => {
    assert.throws(
      () =>
        compareResults(
          { model: A, results: [ok('x', ['cat', 1]), ok('x', ['dog', 1])] },
          { model: B, results: [] },
        ),
      (e: unknown) => e instanceof LabelerError && e.code === 'compare/duplicate-image',
    );
    // The same key in a bucket and as a local file are different images.
    const apart = compareResults(
      { model: A, results: [ok('x.png', ['cat', 1])] },
      { model: B, results: [{ ...ok('x.png', ['cat', 1]), image: { bucket: 'b', key: 'x.png' } }] },
    );
    assert.equal(apart.images.both, 0);
    assert.throws(
      () => assertOverlap(apart, 'in both files'),
      (e: unknown) =>
        e instanceof LabelerError && e.code === 'compare/no-overlap' && /a@1 \(1 results\)/.test(e.message),
    );
    const onlyFailed = compareResults(
      { model: A, results: [failed('x')] },
      { model: B, results: [ok('x', ['cat', 1])] },
    );
    assert.throws(
      () => assertOverlap(onlyFailed, 'in both files'),
      (e: unknown) =>
        e instanceof LabelerError && e.code === 'compare/no-overlap' && /one of them failed/.test(e.message),
    );
  });

  it('prints a table and Markdown with every section, and JSON with every list whole', () => {
    const c = handComparison();
    const table = formatComparison(c, 'table', 1);
    assert.match(table, /top-1 agreement: 50\.0 % \(3\/6\)/);
    assert.match(table, /top-1 accuracy: A 40\.0 % \(2\/5\), B 60\.0 % \(3\/5\), B - A \+20\.0 points/);
    for (const section of [
      'Transitions',
      'Score changes',
      'Changed most',
      'Newly under 0.5',
      'Accuracy per class',
      'B right, A wrong (2)',
      'A right, B wrong (1)',
    ])
      assert.ok(table.includes(section), section);
    assert.match(table, /\.\.\. and 1 more/, 'a list longer than the limit says how many it left out');
    const md = formatComparison(c, 'markdown');
    assert.match(md, /^\| A \\ B \| cat \| dog \| fox \| A total \| kept \|$/m);
    assert.match(md, /^\| cat \| 2 \| 1 \| 0 \| 3 \| 66\.7 % \|$/m);
    assert.deepEqual(JSON.parse(formatComparison(c, 'json')), JSON.parse(JSON.stringify(c)));
  });
});

describe('compare: reading results', () => {
  it("reads a results file as one model's, refusing a line of another model and a missing file", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'labeler-compare-'));
    try {
      const file = join(dir, 'a.jsonl');
      await writeFile(
        file,
        `${JSON.stringify({ file: 'x.png', status: 'ok', labels: [{ label: 'cat', score: 0.9 }] })}\n\n` +
          `${JSON.stringify({ bucket: 'b', key: 'y.png', model: 'a', modelVersion: '1', status: 'failed', error: { code: 'image/empty', message: 'empty' } })}\n`,
      );
      const results = await readResultsFile(file, A);
      assert.deepEqual(
        results.map((r) => [r.image, r.status]),
        [
          [{ key: 'x.png' }, 'ok'],
          [{ bucket: 'b', key: 'y.png' }, 'failed'],
        ],
      );
      await assert.rejects(
        readResultsFile(file, B),
        (e: unknown) =>
          e instanceof LabelerError && e.code === 'compare/model-mismatch' && /line 3/.test(e.message),
      );
      await assert.rejects(
        readResultsFile(join(dir, 'missing.jsonl'), A),
        (e: unknown) => e instanceof LabelerError && e.code === 'results/unreadable',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names a model by id@version or by folder (its manifest and labels), and refuses an unknown one', async () => {
    assert.deepEqual(await resolveModelChoice('fashion@2.0.0'), {
      name: 'fashion@2.0.0',
      ref: { id: 'fashion', version: '2.0.0' },
    });
    const bundled = await resolveModelChoice(DEFAULT_MODEL_DIR);
    assert.equal(bundled.name, 'fashion-efficientnet@1.0.0');
    assert.equal(bundled.classes?.length, 10);
    assert.equal(bundled.classes?.[0], 'T-shirt/top');
    await assert.rejects(
      resolveModelChoice('no-such-model-anywhere'),
      (e: unknown) => e instanceof LabelerError && e.code === 'model/not-found',
    );
  });

  it("pairs each image of a prefix or a job with both models' stored results (in-memory ports)", async () => {
    const result = (key: string, model: ModelRef, label: string): ImageResult => ({
      bucket: 'img',
      key,
      eTag: 'e',
      size: 1,
      sequencer: '1',
      model,
      status: 'ok',
      labels: [{ label, score: 0.9 }],
      timings: { decodeMs: 0, inferenceMs: 0 } as unknown as ImageResult['timings'],
      labeledAt: '2026-01-01T00:00:00Z',
      jobId: 'j1',
    });
    // Model A labeled k0..k249, model B every other one: pages of 100 images per lookup.
    const keys = Array.from({ length: 250 }, (_, i) => `p/k${String(i).padStart(3, '0')}`);
    const stored = new Map<string, ImageResult>();
    for (const [i, key] of keys.entries()) {
      stored.set(`a|img/${key}`, result(key, A.ref, 'cat'));
      if (i % 2 === 0) stored.set(`b|img/${key}`, result(key, B.ref, 'dog'));
    }
    let largestLookup = 0;
    const ports = {
      results: {
        async findExisting(images: ReadonlyArray<{ bucket: string; key: string }>, model: ModelRef) {
          largestLookup = Math.max(largestLookup, images.length);
          const found = new Map<string, ImageResult>();
          for (const i of images) {
            const r = stored.get(`${model.id}|${i.bucket}/${i.key}`);
            if (r) found.set(`${i.bucket}/${i.key}`, r);
          }
          return found;
        },
        queryByLabel: () => Promise.reject(new Error('not used')),
      },
      jobs: {
        get: async (id: string) => (id === 'j1' ? ({ jobId: 'j1' } as never) : undefined),
        async *results() {
          for (const key of keys.slice(0, 120)) yield result(key, A.ref, 'cat');
        },
      },
      async listPage(_bucket: string, prefix: string, token: string | undefined, maxKeys: number) {
        const from = Number(token ?? 0);
        const under = keys.filter((k) => k.startsWith(prefix));
        const page = under.slice(from, from + Math.min(maxKeys, 200));
        return {
          objects: page.map((key) => ({ key })),
          ...(from + page.length < under.length ? { next: String(from + page.length) } : {}),
        };
      },
    };
    const collect = async (gen: AsyncIterable<{ a?: EvaluatedResult; b?: EvaluatedResult }>) => {
      const out = { pairs: 0, a: 0, b: 0 };
      for await (const p of gen) {
        out.pairs++;
        if (p.a) out.a++;
        if (p.b) out.b++;
      }
      return out;
    };
    assert.deepEqual(
      await collect(resultPairs({ by: 'prefix', bucket: 'img', prefix: 'p/' }, ports, A.ref, B.ref)),
      {
        pairs: 250,
        a: 250,
        b: 125,
      },
    );
    assert.ok(largestLookup <= 100, `${largestLookup} images in one lookup`);
    assert.deepEqual(await collect(resultPairs({ by: 'job', jobId: 'j1' }, ports, A.ref, B.ref)), {
      pairs: 120,
      a: 120,
      b: 60,
    });
    await assert.rejects(
      collect(resultPairs({ by: 'job', jobId: 'nope' }, ports, A.ref, B.ref)),
      (e: unknown) => e instanceof LabelerError && e.code === 'job/not-found',
    );
  });
});
