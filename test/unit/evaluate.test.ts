import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Evaluator, NONE, resultFromLine } from '../../shared/labeling/evaluate.ts';
import {
  parseLabelStudio,
  parseTruthCsv,
  readImageFolder,
  readStackTruth,
  readTruthPath,
  TruthSet,
} from '../../shared/labeling/ground-truth.ts';

const close = (actual: number | null | undefined, expected: number, what: string) =>
  assert.ok(
    actual !== null && actual !== undefined && Math.abs(actual - expected) < 1e-9,
    `${what}: ${actual} != ${expected}`,
  );

/**
 * Eight images with truth, computed by hand below: classes A, B, C; C is never predicted,
 * b2 failed, m1 has no result, x1's truth X is a label the model does not have, z1 has no truth.
 */
function handSet() {
  const truth = new TruthSet(
    parseTruthCsv(
      'file,label\na1.png,A\na2.png,A\na3.png,A\nb1.png,B\nb2.png,B\nm1.png,B\nc1.png,C\nx1.png,X\nnot-selected.png,A\n',
      'hand.csv',
    ),
  );
  const e = new Evaluator(['A', 'B', 'C'], truth);
  const ok = (key: string, ...labels: Array<[string, number]>) =>
    e.add({ image: { key }, status: 'ok', labels: labels.map(([label, score]) => ({ label, score })) });
  ok('dir/a1.png', ['A', 0.9], ['B', 0.05]);
  ok('dir/a2.png', ['A', 0.8], ['C', 0.1]);
  ok('dir/a3.png', ['B', 0.6], ['A', 0.3]);
  ok('dir/b1.png', ['B', 0.7], ['A', 0.2]);
  e.add({ image: { key: 'dir/b2.png' }, status: 'failed', labels: [] });
  ok('dir/x1.png', ['A', 0.55], ['B', 0.3]);
  ok('dir/c1.png', ['B', 0.95], ['C', 0.04]);
  ok('dir/z1.png', ['A', 0.99]);
  e.addMissing({ key: 'dir/m1.png' });
  return e.report({ topK: 2, bins: 5, thresholds: [0, 0.6, 0.9], minAccuracy: 0.75 });
}

describe('evaluate: metrics computed by hand on a small labeled set', () => {
  const r = handSet();

  it('counts the images, the failed, the missing, and what had no truth', () => {
    assert.equal(r.images, 8);
    assert.equal(r.ok, 6);
    assert.equal(r.failed, 1);
    assert.equal(r.withoutResult, 1);
    assert.equal(r.withoutTruth, 1);
    assert.equal(r.truthOutsideSelection, 1);
    assert.deepEqual(r.unknownLabels, [{ label: 'X', images: 1 }]);
  });

  it('gives top-1 and top-k accuracy over every image with truth (failed and missing are misses)', () => {
    assert.deepEqual(r.top1, { correct: 3, accuracy: 3 / 8 });
    assert.deepEqual(r.topK, { k: 2, correct: 5, accuracy: 5 / 8 });
  });

  it('builds the confusion matrix with a column for no result, summing to the images', () => {
    assert.deepEqual(r.confusion.rows, ['A', 'B', 'C', 'X']);
    assert.deepEqual(r.confusion.columns, ['A', 'B', 'C', NONE]);
    assert.deepEqual(r.confusion.matrix, [
      [2, 1, 0, 0],
      [0, 1, 0, 2],
      [0, 1, 0, 0],
      [1, 0, 0, 0],
    ]);
    const sum = r.confusion.matrix.flat().reduce((a, b) => a + b, 0);
    assert.equal(sum, r.images);
  });

  it('gives per-class precision, recall, F1 and support; never-predicted precision is null', () => {
    const by = new Map(r.classes.map((c) => [c.label, c]));
    const a = by.get('A');
    close(a?.precision, 2 / 3, 'A precision');
    close(a?.recall, 2 / 3, 'A recall');
    close(a?.f1, 2 / 3, 'A f1');
    assert.equal(a?.support, 3);
    const b = by.get('B');
    close(b?.precision, 1 / 3, 'B precision');
    close(b?.recall, 1 / 3, 'B recall');
    assert.equal(b?.support, 3);
    assert.deepEqual(
      { ...by.get('C') },
      {
        label: 'C',
        inModel: true,
        support: 1,
        predicted: 0,
        correct: 0,
        precision: null,
        recall: 0,
        f1: null,
      },
    );
    assert.deepEqual(
      { ...by.get('X') },
      {
        label: 'X',
        inModel: false,
        support: 1,
        predicted: 0,
        correct: 0,
        precision: null,
        recall: 0,
        f1: null,
      },
    );
    close(r.macro.precision, 0.25, 'macro precision');
    close(r.macro.recall, 0.25, 'macro recall');
    close(r.macro.f1, 0.25, 'macro f1');
  });

  it('bins the top-1 scores for calibration and computes the expected calibration error', () => {
    const bins = r.calibration.bins;
    assert.deepEqual(
      bins.map((b) => b.images),
      [0, 0, 1, 2, 3],
    );
    assert.equal(bins[0]?.meanScore, null);
    close(bins[2]?.meanScore, 0.55, 'bin 2 mean');
    assert.equal(bins[2]?.accuracy, 0);
    close(bins[3]?.meanScore, 0.65, 'bin 3 mean');
    assert.equal(bins[3]?.accuracy, 0.5);
    close(bins[4]?.meanScore, 2.65 / 3, 'bin 4 mean');
    close(bins[4]?.accuracy, 2 / 3, 'bin 4 accuracy');
    // 1/6 * 0.55 + 2/6 * 0.15 + 3/6 * (0.88333 - 0.66667)
    close(r.calibration.ece, 0.25, 'ECE');
  });

  it('gives the share kept and the accuracy at each minimum score', () => {
    assert.deepEqual(
      r.thresholds.map((t) => [t.minScore, t.images, t.share, t.accuracy]),
      [
        [0, 6, 6 / 8, 3 / 6],
        [0.6, 5, 5 / 8, 3 / 5],
        [0.9, 2, 2 / 8, 1 / 2],
      ],
    );
  });

  it('finds the lowest minimum score that reaches --min-accuracy, or says none does', () => {
    assert.deepEqual(r.minAccuracy, { target: 0.75, minScore: 0.7, images: 4, share: 0.5, accuracy: 0.75 });
    const truth = new TruthSet(parseTruthCsv('a.png,A\nb.png,A\n', 't.csv'));
    const e = new Evaluator(['A', 'B'], truth);
    e.add({ image: { key: 'a.png' }, status: 'ok', labels: [{ label: 'B', score: 0.9 }] });
    e.add({ image: { key: 'b.png' }, status: 'ok', labels: [{ label: 'A', score: 0.5 }] });
    assert.deepEqual(e.report({ minAccuracy: 1 }).minAccuracy, {
      target: 1,
      minScore: null,
      images: 0,
      share: 0,
      accuracy: null,
    });
  });

  it('keeps the images behind each cell when asked (the results page opens them)', () => {
    const truth = new TruthSet(parseTruthCsv('key,label\na.png,A\nb.png,A\n', 't.csv'));
    const e = new Evaluator(['A', 'B'], truth);
    e.add({ image: { bucket: 'img', key: 'a.png' }, status: 'ok', labels: [{ label: 'B', score: 0.9 }] });
    e.add({ image: { bucket: 'img', key: 'b.png' }, status: 'failed', labels: [] });
    const images = e.report({ cellImages: true }).confusion.images;
    assert.deepEqual(images?.[0]?.[1], [{ bucket: 'img', key: 'a.png' }]);
    assert.deepEqual(images?.[0]?.[2], [{ bucket: 'img', key: 'b.png' }]);
  });

  it('reads the result lines of "labeler label" and of "labeler export"', () => {
    assert.deepEqual(
      resultFromLine('{"file":"/x/a.png","status":"ok","labels":[{"label":"A","score":0.5}]}', 'line 1'),
      { image: { key: '/x/a.png' }, status: 'ok', labels: [{ label: 'A', score: 0.5 }] },
    );
    assert.deepEqual(
      resultFromLine(
        '{"bucket":"b","key":"k.png","status":"failed","error":{"code":"x","message":"y"}}',
        'l',
      ),
      { image: { bucket: 'b', key: 'k.png' }, status: 'failed', labels: [] },
    );
    assert.throws(() => resultFromLine('{"status":"ok"}', 'r.jsonl line 3'), { code: 'results/unreadable' });
    assert.throws(() => resultFromLine('nope', 'r.jsonl line 3'), { code: 'results/unreadable' });
  });
});

describe('ground truth readers', () => {
  it('reads the bundled samples.csv format, a headerless CSV, quotes and a bucket column', () => {
    assert.deepEqual(parseTruthCsv('file,label\r\ntest-00000.png,Ankle boot\r\n', 's.csv').entries, [
      { key: 'test-00000.png', label: 'Ankle boot' },
    ]);
    assert.deepEqual(parseTruthCsv('a.png,"Shirt, long"\n"b ""c"".png",Bag\n', 's.csv').entries, [
      { key: 'a.png', label: 'Shirt, long' },
      { key: 'b "c".png', label: 'Bag' },
    ]);
    assert.deepEqual(parseTruthCsv('label,bucket,key\nBag,imgs,x/y.png\n', 's.csv').entries, [
      { bucket: 'imgs', key: 'x/y.png', label: 'Bag' },
    ]);
    assert.throws(() => parseTruthCsv('a.png,Bag,extra\n', 'bad.csv'), {
      code: 'truth/unreadable',
      message: /bad\.csv: row 1 is not "key,label"/,
    });
  });

  it('reads an ImageFolder tree: the class is the top folder, keys are relative paths', async () => {
    const root = await mkdtemp(join(tmpdir(), 'labeler-truth-'));
    try {
      await mkdir(join(root, 'Bag', 'deep'), { recursive: true });
      await mkdir(join(root, 'Sneaker'));
      await writeFile(join(root, 'Bag', 'a.png'), '');
      await writeFile(join(root, 'Bag', 'deep', 'b.JPG'), '');
      await writeFile(join(root, 'Bag', 'notes.txt'), '');
      await writeFile(join(root, 'Sneaker', 'a.png'), '');
      await writeFile(join(root, 'loose.png'), '');
      const truth = await readImageFolder(root);
      assert.deepEqual(
        [...truth.entries].sort((x, y) => x.key.localeCompare(y.key)),
        [
          { key: 'Bag/a.png', label: 'Bag' },
          { key: 'Bag/deep/b.JPG', label: 'Bag' },
          { key: 'Sneaker/a.png', label: 'Sneaker' },
        ],
      );
      assert.equal((await readTruthPath(root)).entries.length, 3);
      // Same file name in two classes: matched by relative path under a prefix, never by name.
      const set = new TruthSet(truth);
      assert.equal(set.lookup({ bucket: 'imgs', key: 'shoot/Sneaker/a.png' })?.label, 'Sneaker');
      assert.equal(set.lookup({ key: '/home/me/data/Bag/a.png' })?.label, 'Bag');
      assert.equal(set.lookup({ key: 'elsewhere/a.png' }), undefined);
      assert.equal(set.lookup({ key: '/other/b.JPG' })?.label, 'Bag', 'a unique file name matches');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("reads a Label Studio JSON export's newest choice per task, skipping cancelled and unannotated tasks", () => {
    const tasks = [
      {
        data: { image: 's3://imgs/shoot/a.png' },
        annotations: [
          { created_at: '2026-01-01T00:00:00Z', result: [{ type: 'choices', value: { choices: ['Bag'] } }] },
          {
            created_at: '2026-01-02T00:00:00Z',
            result: [{ type: 'choices', value: { choices: ['Shirt'] } }],
          },
          {
            created_at: '2026-01-03T00:00:00Z',
            was_cancelled: true,
            result: [{ value: { choices: ['Coat'] } }],
          },
        ],
      },
      { data: { image: 'http://localhost:8080/data/upload/1/b%20c.png' }, annotations: [] },
      {
        data: { image: '/data/local-files/?d=photos/d.png' },
        annotations: [{ result: [{ value: { choices: ['Bag'] } }] }],
      },
    ];
    assert.deepEqual(parseLabelStudio(JSON.stringify(tasks), 'ls.json').entries, [
      { bucket: 'imgs', key: 'shoot/a.png', label: 'Shirt' },
      { key: 'photos/d.png', label: 'Bag' },
    ]);
    assert.throws(() => parseLabelStudio('{', 'ls.json'), { code: 'truth/unreadable' });
  });

  it("reads the stack's stored review answers; the newest answer per image wins", async () => {
    const objects: Record<string, string> = {
      'truth/2026-01-01.jsonl': `${[
        { bucket: 'imgs', key: 'a.png', label: 'Bag', annotator: 'ann', annotatedAt: '2026-01-01T00:00:00Z' },
        {
          bucket: 'imgs',
          key: 'b.png',
          label: 'Coat',
          annotator: 'ann',
          annotatedAt: '2026-01-01T00:00:00Z',
        },
      ]
        .map((a) => JSON.stringify({ ...a, source: 'label-studio' }))
        .join('\n')}\n`,
      'truth/2026-01-02.jsonl': `${JSON.stringify({ bucket: 'imgs', key: 'a.png', label: 'Shirt', annotator: 'bo', annotatedAt: '2026-01-02T00:00:00Z', source: 'label-studio' })}\n`,
    };
    const truth = await readStackTruth({
      async *list(prefix) {
        yield* Object.keys(objects).filter((k) => k.startsWith(prefix));
      },
      read: async (key) => objects[key] as string,
    });
    assert.equal(truth.source, "the stack's truth/ (3 answers)");
    assert.deepEqual(truth.entries, [
      { bucket: 'imgs', key: 'a.png', label: 'Shirt' },
      { bucket: 'imgs', key: 'b.png', label: 'Coat' },
    ]);
    const set = new TruthSet(truth);
    assert.equal(set.lookup({ bucket: 'imgs', key: 'a.png' })?.label, 'Shirt');
    assert.equal(set.lookup({ bucket: 'other', key: 'a.png' }), undefined, 'another bucket is another image');
  });
});
