import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { markAsUntransferable } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { DEFAULT_IMAGE_LIMITS } from '../../shared/image/preprocess.ts';
import { ImageLabeler, type LabelOutcome } from '../../shared/labeling/image-labeler.ts';
import { Classifier, sessionOptions, softmax, topLabels } from '../../shared/model/classifier.ts';
import { loadModelBundle, type ModelBundle } from '../../shared/model/manifest.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';

// The Classifier hands each batch's buffer to its inference thread instead of copying it
// (a structured clone of a batch-128 tensor cost more than a GPU's inference of it) and
// recycles the buffers that come back. These tests pin the semantics that relies on.

let bundle: ModelBundle;
let classifier: Classifier;
let session: ort.InferenceSession;

/** Deterministic values in the range of normalised pixels. */
function fill(batch: Float32Array, seed: number): Float32Array {
  let x = seed;
  for (let i = 0; i < batch.length; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    batch[i] = (x / 2147483648) * 4 - 2;
  }
  return batch;
}

/** What `classify` must return: a direct session.run on the same floats, softmax, top k. */
async function direct(input: Float32Array, count: number, k: number) {
  const { input: spec, output } = bundle.manifest;
  const out = await session.run(
    { [spec.name]: new ort.Tensor('float32', Float32Array.from(input), [count, 3, spec.height, spec.width]) },
    [output.name],
  );
  const scores = out[output.name]?.data as Float32Array;
  const classes = bundle.labels.length;
  return Array.from({ length: count }, (_, i) =>
    topLabels(softmax(scores.subarray(i * classes, (i + 1) * classes)), bundle.labels, k),
  );
}

before(async () => {
  bundle = await loadModelBundle(DEFAULT_MODEL_DIR);
  classifier = await Classifier.create(bundle, { intraOpThreads: 1 });
  session = await ort.InferenceSession.create(bundle.modelBytes, {
    ...sessionOptions({ intraOpThreads: 1 }),
    executionProviders: ['cpu'],
  });
});

after(async () => {
  await classifier.release();
  await session.release();
});

describe('Classifier: the batch moves to the inference thread', () => {
  it('transfers the batch buffer (byteLength 0 in the sender) and returns what a direct session.run gives', async () => {
    const count = 3;
    const batch = fill(classifier.inputBatch(count), 7);
    const expected = await direct(batch, count, bundle.labels.length);
    const labels = await classifier.classify(batch, count, bundle.labels.length);
    assert.equal(batch.buffer.byteLength, 0, 'the buffer was transferred, not copied');
    assert.equal(batch.length, 0);
    assert.deepEqual(labels, expected);
  });

  it('transfers a plain Float32Array the caller made, and a batch longer than count', async () => {
    const batch = fill(new Float32Array(4 * classifier.imageLength), 11);
    const expected = await direct(batch.subarray(0, 2 * classifier.imageLength), 2, 5);
    const labels = await classifier.classify(batch, 2, 5);
    assert.equal(batch.buffer.byteLength, 0);
    assert.deepEqual(labels, expected);
  });

  it('copies a buffer marked untransferable instead of failing, and leaves it with the caller', async () => {
    const buffer = new ArrayBuffer(2 * classifier.imageLength * 4);
    markAsUntransferable(buffer);
    const batch = fill(new Float32Array(buffer), 13);
    const expected = await direct(batch, 2, 3);
    assert.deepEqual(await classifier.classify(batch, 2, 3), expected);
    assert.equal(buffer.byteLength, 2 * classifier.imageLength * 4);
  });

  it('hands the returned buffer out again from inputBatch, with the earlier input still in it', async () => {
    const count = 2;
    // Drain what earlier tests left, so the next buffer back is the only spare.
    const held = [classifier.inputBatch(count), classifier.inputBatch(count), classifier.inputBatch(count)];
    held.push(classifier.inputBatch(count), classifier.inputBatch(count));
    const batch = fill(classifier.inputBatch(count), 23);
    const sent = Float32Array.from(batch);
    await classifier.classify(batch, count, 1);
    const again = classifier.inputBatch(count);
    // A new buffer would be zeros: this one is the batch's own buffer, back from the thread.
    assert.deepEqual(again, sent);
  });

  it('refuses a batch whose buffer an earlier classify already took, saying so', async () => {
    const batch = fill(classifier.inputBatch(1), 5);
    await classifier.classify(batch, 1, 1);
    await assert.rejects(classifier.classify(batch, 1, 1), (error: Error) => {
      assert.ok(error instanceof RangeError);
      assert.match(error.message, /already handed to an earlier classify/);
      return true;
    });
  });

  it('keeps each batch apart when several are in flight at once', async () => {
    const count = 2;
    const inputs = [31, 37, 41, 43].map((seed) => fill(classifier.inputBatch(count), seed));
    const expected = await Promise.all(inputs.map((b) => direct(b, count, 3)));
    const labels = await Promise.all(inputs.map((b) => classifier.classify(b, count, 3)));
    assert.deepEqual(labels, expected);
  });
});

describe('ImageLabeler on recycled buffers', () => {
  it('labels every image as it would alone, across batches with failed images packed out', async () => {
    const samples = join(DEFAULT_MODEL_DIR, 'samples');
    const files = (await readdir(samples)).filter((f) => f.endsWith('.png')).slice(0, 7);
    const images = await Promise.all(files.map((f) => readFile(join(samples, f))));
    const broken = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
    // Bad images in the middle of batches move the good ones forward in the tensor, over
    // whatever an earlier batch left in the recycled buffer.
    const items = [
      images[0],
      broken,
      images[1],
      images[2],
      images[3],
      broken,
      images[4],
      images[5],
      images[6],
    ];
    const labeler = new ImageLabeler(classifier, {
      limits: DEFAULT_IMAGE_LIMITS,
      topK: 3,
      batchSize: 4,
      concurrency: 2,
    });
    const together: LabelOutcome[] = [];
    for await (const run of labeler.labelAll(items, async (bytes) => bytes as Uint8Array)) {
      together.push(...run.map((r) => r.outcome));
    }
    assert.equal(together.length, items.length);
    for (const [i, item] of items.entries()) {
      const outcome = together[i] as LabelOutcome;
      if (item === broken) {
        assert.equal(outcome.status, 'failed');
        continue;
      }
      const [alone] = await labeler.labelBatch([item], async (bytes) => bytes as Uint8Array);
      assert.equal(outcome.status, 'ok', `image ${i}`);
      assert.equal(alone?.status, 'ok');
      if (outcome.status === 'ok' && alone?.status === 'ok') {
        assert.deepEqual(
          outcome.labels.map((l) => l.label),
          alone.labels.map((l) => l.label),
          `image ${i}`,
        );
        for (const [j, l] of outcome.labels.entries()) {
          assert.ok(Math.abs(l.score - (alone.labels[j]?.score ?? -1)) < 1e-5, `image ${i} label ${j}`);
        }
      }
    }
  });
});
