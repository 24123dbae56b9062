import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LabelerError } from '../../shared/errors.ts';
import type { ImageResult } from '../../shared/labeling/results.ts';
import {
  fiftyOneLabels,
  importId,
  labelStudioConfig,
  labelStudioTasks,
  parseLabelStudioExport,
  pickForReview,
  truthJsonLines,
  truthKey,
} from '../../shared/labeling/review.ts';

const CLASSES = ['T-shirt/top', 'Trouser', 'Bag', 'Shirt & "tie"'];

function result(key: string, labels: Array<[string, number]>, status: 'ok' | 'failed' = 'ok'): ImageResult {
  return {
    bucket: 'labeler-images',
    key,
    eTag: 'e',
    size: 1,
    sequencer: '0A',
    model: { id: 'fashion-efficientnet', version: '1.0.0' },
    status,
    labels: labels.map(([label, score]) => ({ label, score })),
    ...(status === 'failed' ? { error: { code: 'image/decode-failed', message: 'x' } } : {}),
    timings: { readMs: 1, preprocessMs: 1, inferMs: 1, batchSize: 1 },
    labeledAt: '2026-01-01T00:00:00.000Z',
  };
}

// a: score .9, margin .85; b: score .5, margin .02; c: score .6, margin .5; d: score .45, margin .4
const RESULTS = [
  result('a.png', [
    ['Bag', 0.9],
    ['Trouser', 0.05],
  ]),
  result('b.png', [
    ['Trouser', 0.5],
    ['Bag', 0.48],
  ]),
  result('broken.png', [], 'failed'),
  result('c.png', [
    ['Shirt & "tie"', 0.6],
    ['Bag', 0.1],
  ]),
  result('d.jpg', [
    ['Bag', 0.05],
    ['T-shirt/top', 0.45],
  ]),
];

describe('review export: picking and ordering', () => {
  it('orders by top-1 score ascending, leaving failed results out and counting them', async () => {
    const pick = await pickForReview(RESULTS, { maxScore: 1, order: 'score' });
    assert.deepEqual(
      pick.items.map((i) => i.key),
      ['d.jpg', 'b.png', 'c.png', 'a.png'],
    );
    assert.equal(pick.failed, 1);
    assert.equal(pick.confident, 0);
    // The top label is the highest score even when the stored labels are not sorted.
    assert.deepEqual(pick.items[0]?.top, { label: 'T-shirt/top', score: 0.45 });
  });

  it('orders by the top-1 minus top-2 margin ascending', async () => {
    const pick = await pickForReview(RESULTS, { maxScore: 1, order: 'margin' });
    assert.deepEqual(
      pick.items.map((i) => i.key),
      ['b.png', 'd.jpg', 'c.png', 'a.png'],
    );
    assert.ok(Math.abs((pick.items[0]?.margin ?? 0) - 0.02) < 1e-9);
  });

  it('--max-score keeps only images whose top-1 score is below it', async () => {
    const pick = await pickForReview(RESULTS, { maxScore: 0.6, order: 'score' });
    assert.deepEqual(
      pick.items.map((i) => i.key),
      ['d.jpg', 'b.png'],
    );
    assert.equal(pick.confident, 2);
  });

  it('breaks ties by key so the order is stable', async () => {
    const same = [result('z.png', [['Bag', 0.5]]), result('m.png', [['Bag', 0.5]])];
    const pick = await pickForReview(same, { maxScore: 1, order: 'score' });
    assert.deepEqual(
      pick.items.map((i) => i.key),
      ['m.png', 'z.png'],
    );
  });
});

describe('review export: Label Studio shape', () => {
  it('writes one task per image with data.image/bucket/key and one choices prediction matching the config', async () => {
    const pick = await pickForReview(RESULTS.slice(0, 2), { maxScore: 1, order: 'score' });
    const tasks = labelStudioTasks(pick.items, (i) => `https://s3.example/${i.key}?sig`);
    assert.deepEqual(tasks, [
      {
        data: { image: 'https://s3.example/b.png?sig', bucket: 'labeler-images', key: 'b.png' },
        predictions: [
          {
            model_version: 'fashion-efficientnet@1.0.0',
            score: 0.5,
            result: [
              {
                id: 'r1',
                type: 'choices',
                from_name: 'label',
                to_name: 'image',
                value: { choices: ['Trouser'] },
              },
            ],
          },
        ],
      },
      {
        data: { image: 'https://s3.example/a.png?sig', bucket: 'labeler-images', key: 'a.png' },
        predictions: [
          {
            model_version: 'fashion-efficientnet@1.0.0',
            score: 0.9,
            result: [
              {
                id: 'r2',
                type: 'choices',
                from_name: 'label',
                to_name: 'image',
                value: { choices: ['Bag'] },
              },
            ],
          },
        ],
      },
    ]);
  });

  it('writes a labeling config whose <Choices> name and <Image> name are the predictions from_name/to_name, values XML-escaped', () => {
    assert.equal(
      labelStudioConfig(CLASSES),
      `<View>
  <Image name="image" value="$image"/>
  <Choices name="label" toName="image" choice="single" required="true">
    <Choice value="T-shirt/top"/>
    <Choice value="Trouser"/>
    <Choice value="Bag"/>
    <Choice value="Shirt &amp; &quot;tie&quot;"/>
  </Choices>
</View>
`,
    );
  });
});

describe('review export: FiftyOne shape', () => {
  it('is labels.json of a FiftyOneImageClassificationDataset: UUID = key without extension, label + confidence', async () => {
    const pick = await pickForReview(RESULTS, { maxScore: 1, order: 'score' });
    const json = fiftyOneLabels(pick.items);
    assert.deepEqual(json, {
      labels: {
        d: { label: 'T-shirt/top', confidence: 0.45 },
        b: { label: 'Trouser', confidence: 0.5 },
        c: { label: 'Shirt & "tie"', confidence: 0.6 },
        a: { label: 'Bag', confidence: 0.9 },
      },
    });
    assert.deepEqual(Object.keys(json.labels), ['d', 'b', 'c', 'a'], 'lowest score first');
  });

  it('refuses two keys with the same UUID', async () => {
    const pick = await pickForReview([result('x/a.png', [['Bag', 0.5]]), result('x/a.jpg', [['Bag', 0.4]])], {
      maxScore: 1,
      order: 'score',
    });
    assert.throws(
      () => fiftyOneLabels(pick.items),
      (e: unknown) => e instanceof LabelerError && e.code === 'review/fiftyone-uuid-clash',
    );
  });
});

describe('review import: a Label Studio JSON export', () => {
  const IMPORTED_AT = new Date('2026-03-04T05:06:07.000Z');
  const choice = (label: string) => [
    { id: 'x', type: 'choices', from_name: 'label', to_name: 'image', value: { choices: [label] } },
  ];
  const EXPORT = [
    {
      id: 1,
      data: { image: 'https://signed/b.png', bucket: 'labeler-images', key: 'b.png' },
      annotations: [
        {
          id: 11,
          completed_by: { id: 3, email: 'ann@example.com' },
          result: choice('Bag'),
          was_cancelled: false,
          created_at: '2026-03-01T10:00:00.000000Z',
          updated_at: '2026-03-01T10:05:00.123456Z',
        },
      ],
      predictions: [],
    },
    {
      id: 2,
      data: { image: 's3://other-bucket/dir/c d.png' },
      annotations: [
        { id: 12, completed_by: 7, result: choice('Trouser'), created_at: '2026-03-02T08:00:00Z' },
      ],
    },
    {
      id: 3,
      data: { image: 'https://signed/a.png', bucket: 'labeler-images', key: 'a.png' },
      annotations: [{ id: 13, completed_by: 7, result: choice('Sandal'), was_cancelled: false }],
    },
    {
      id: 4,
      data: { image: 'https://signed/d.png', bucket: 'labeler-images', key: 'd.png' },
      annotations: [{ id: 14, completed_by: 7, result: [], was_cancelled: true }],
    },
    {
      id: 5,
      data: { image: 'https://signed/e.png', bucket: 'labeler-images', key: 'e.png' },
      annotations: [],
    },
    {
      id: 6,
      data: { image: 'https://elsewhere/f.png' },
      annotations: [{ id: 16, completed_by: 7, result: choice('Bag') }],
    },
  ];

  it('turns each answer into a truth line; cancelled, unanswered, unknown labels and unlocated tasks are counted', () => {
    const parsed = parseLabelStudioExport(JSON.stringify(EXPORT), CLASSES, IMPORTED_AT);
    assert.deepEqual(parsed.lines, [
      {
        bucket: 'labeler-images',
        key: 'b.png',
        label: 'Bag',
        annotator: 'ann@example.com',
        annotatedAt: '2026-03-01T10:05:00.123Z',
        source: 'label-studio',
      },
      {
        bucket: 'other-bucket',
        key: 'dir/c d.png',
        label: 'Trouser',
        annotator: '7',
        annotatedAt: '2026-03-02T08:00:00.000Z',
        source: 'label-studio',
      },
    ]);
    assert.equal(parsed.tasks, 6);
    assert.equal(parsed.cancelled, 1);
    assert.deepEqual([...parsed.unknownLabels], [['Sandal', 1]]);
    assert.equal(parsed.unanswered, 2, 'the cancelled-only task and the one with no annotation');
    assert.equal(parsed.unlocated, 1);
    assert.equal(parsed.noChoice, 0);
  });

  it('uses the import time and "unknown" when the annotation has no time and no annotator', () => {
    const parsed = parseLabelStudioExport(
      JSON.stringify([{ data: { bucket: 'b', key: 'k' }, annotations: [{ result: choice('Bag') }] }]),
      CLASSES,
      IMPORTED_AT,
    );
    assert.deepEqual(parsed.lines, [
      {
        bucket: 'b',
        key: 'k',
        label: 'Bag',
        annotator: 'unknown',
        annotatedAt: '2026-03-04T05:06:07.000Z',
        source: 'label-studio',
      },
    ]);
  });

  it('counts an annotation with several or no choices instead of guessing', () => {
    const two = [
      { type: 'choices', from_name: 'label', to_name: 'image', value: { choices: ['Bag', 'Trouser'] } },
    ];
    const parsed = parseLabelStudioExport(
      JSON.stringify([{ data: { bucket: 'b', key: 'k' }, annotations: [{ result: two }, { result: [] }] }]),
      CLASSES,
      IMPORTED_AT,
    );
    assert.equal(parsed.lines.length, 0);
    assert.equal(parsed.noChoice, 2);
  });

  it('round-trips the tasks review export writes', async () => {
    const pick = await pickForReview(RESULTS, { maxScore: 1, order: 'score' });
    const tasks = labelStudioTasks(pick.items, (i) => `https://signed/${i.key}`);
    // Label Studio's export: the imported task, its id, and an annotation accepting the prediction.
    const exported = tasks.map((t, i) => ({
      id: i + 1,
      ...t,
      annotations: [
        {
          id: 100 + i,
          completed_by: 1,
          result: t.predictions[0]?.result,
          was_cancelled: false,
          created_at: '2026-03-01T00:00:00Z',
          updated_at: '2026-03-01T00:00:00Z',
        },
      ],
    }));
    const parsed = parseLabelStudioExport(JSON.stringify(exported), CLASSES, IMPORTED_AT);
    assert.deepEqual(
      parsed.lines.map((l) => [l.bucket, l.key, l.label]),
      pick.items.map((i) => [i.bucket, i.key, i.top.label]),
    );
  });

  it('refuses what is not a Label Studio JSON export with review/bad-export', () => {
    for (const text of ['not json', '{"tasks": []}', '[1]', '[{"data": {}, "annotations": {}}]']) {
      assert.throws(
        () => parseLabelStudioExport(text, CLASSES, IMPORTED_AT),
        (e: unknown) => e instanceof LabelerError && e.code === 'review/bad-export',
        text,
      );
    }
  });

  it('names the truth object truth/<yyyy-mm-dd>/<hash of the export>.jsonl, one JSON line per answer', () => {
    const id = importId('[]');
    assert.match(id, /^[0-9a-f]{16}$/);
    assert.equal(importId('[]'), id);
    assert.notEqual(importId('[ ]'), id);
    assert.equal(truthKey(id, IMPORTED_AT), `truth/2026-03-04/${id}.jsonl`);
    assert.equal(
      truthJsonLines([
        { bucket: 'b', key: 'k', label: 'Bag', annotator: 'a', annotatedAt: 't', source: 'label-studio' },
      ]),
      '{"bucket":"b","key":"k","label":"Bag","annotator":"a","annotatedAt":"t","source":"label-studio"}\n',
    );
  });
});
