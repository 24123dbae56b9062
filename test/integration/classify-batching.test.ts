import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { createClassifyDeps } from '../../shared/aws/classify-handler.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import { TransientError } from '../../shared/errors.ts';
import {
  type ClassifyDeps,
  classifyRecords,
  type QueueRecord,
} from '../../shared/labeling/classify-records.ts';
import { ImageLabeler, mapLimit, type ReadImage } from '../../shared/labeling/image-labeler.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { s3EventBody } from '../helpers/events.ts';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const BATCH_SIZE = 32;
// Outside UPLOAD_FILTER.prefix: the stack's notifier ignores these uploads, the test feeds the events.
const PREFIX = 'batching/';

/** One SQS message announcing every key given, as one S3 event with many records. */
function message(messageId: string, keys: readonly string[], eTag: string, size: number): QueueRecord {
  const records = keys.map(
    (key) => JSON.parse(s3EventBody({ bucket: 'placeholder', key, eTag, size })).Records[0],
  );
  return { messageId, body: JSON.stringify({ Records: records }) };
}

describe('classifyRecords: inference runs of the configured batch size (fauxqs S3 + DynamoDB Local + ONNX)', () => {
  let stack: LocalStack;
  let deps: ClassifyDeps;
  let store: DynamoResultsStore;
  let eTag: string;
  let size: number;
  /** Every inference run the classifier was asked for: images and floats in its tensor. */
  let runs: Array<{ count: number; floats: number; ms: number }>;

  const withBucket = (record: QueueRecord): QueueRecord => ({
    ...record,
    body: record.body.replaceAll('placeholder', stack.names.imagesBucket),
  });
  const upload = async (keys: readonly string[]) => {
    const body = await readFile(join(DEFAULT_MODEL_DIR, 'samples', 'test-00000.png'));
    size = body.length;
    await mapLimit(keys, 8, async (key) => {
      const r = await stack.clients.s3.send(
        new PutObjectCommand({ Bucket: stack.names.imagesBucket, Key: key, Body: body }),
      );
      eTag = (r.ETag ?? '').replace(/"/g, '');
    });
  };

  before(async () => {
    stack = await startLocalStack({ worker: false });
    deps = await createClassifyDeps(
      {
        region: stack.region,
        resultsTable: stack.names.resultsTable,
        resultsBucket: stack.names.resultsBucket,
        modelDir: DEFAULT_MODEL_DIR,
        executionProviders: ['cpu'],
        intraOpThreads: 1,
        topK: 3,
        batchSize: BATCH_SIZE,
        concurrency: 2,
        maxBytes: 1 << 20,
        maxPixels: 1 << 20,
      },
      stack.clients,
      quiet,
    );
    store = new DynamoResultsStore(stack.clients.db, stack.names.resultsTable);
    // Observes (does not replace) the real ONNX run, to see how the batch was split.
    const { classifier } = deps.labeler;
    const classify = classifier.classify.bind(classifier);
    classifier.classify = async (batch, count, topK) => {
      const started = performance.now();
      try {
        return await classify(batch, count, topK);
      } finally {
        runs.push({ count, floats: batch.length, ms: performance.now() - started });
      }
    };
  });
  after(async () => {
    await deps?.labeler.classifier.release();
    await stack?.stop();
  });

  it('splits a 500-record message into runs of batchSize, never one 500-image tensor', async () => {
    runs = [];
    const keys = Array.from({ length: 500 }, (_, i) => `${PREFIX}big/${String(i).padStart(3, '0')}.png`);
    await upload(keys);

    const report = await classifyRecords([withBucket(message('big', keys, eTag, size))], deps);

    assert.deepEqual(report.failedMessageIds, []);
    assert.equal(report.counts.images, 500);
    assert.equal(report.counts.labeled, 500);
    assert.equal(report.counts.inferred, 500);
    assert.deepEqual(
      runs.map((r) => r.count),
      [...Array.from({ length: 15 }, () => BATCH_SIZE), 20],
    );
    // Peak memory bound, asserted on what grew with the message rather than on RSS (which
    // depends on the allocator and GC timing, so an RSS test would be flaky): the largest
    // tensor is at most batchSize images. Before, it was 500 images; at 224 px that is
    // 500 x 602 KB = 301 MB of floats (plus sharp's buffers, about 30 MB of RSS per image)
    // against 32 x 602 KB = 19 MB now, a 15x smaller bound.
    const imageLength = deps.labeler.classifier.imageLength;
    assert.ok(Math.max(...runs.map((r) => r.floats)) <= BATCH_SIZE * imageLength);

    // Every image got its result, carrying the size of the run that labeled it.
    const sizes = new Map<number, number>();
    const stored = await mapLimit(
      keys,
      8,
      async (key) => (await store.getByImage(stack.names.imagesBucket, key))[0],
    );
    for (const [i, result] of stored.entries()) {
      assert.equal(result?.status, 'ok', keys[i]);
      sizes.set(result.timings.batchSize, (sizes.get(result.timings.batchSize) ?? 0) + 1);
    }
    assert.deepEqual(
      [...sizes].sort((a, b) => b[0] - a[0]),
      [
        [BATCH_SIZE, 480],
        [20, 20],
      ],
    );
    // Inference time is summed over the 16 runs: at least the time the model itself took.
    const modelMs = runs.reduce((sum, r) => sum + r.ms, 0);
    assert.ok(report.stageMs.inference >= modelMs, `${report.stageMs.inference} < ${modelMs}`);
    assert.ok(report.stageMs.writes > 0);
  });

  it('fails only the message whose image failed transiently, in a later run (injected S3 error)', async () => {
    runs = [];
    const first = [`${PREFIX}t/a1.png`, `${PREFIX}t/a2.png`, `${PREFIX}t/flaky.png`];
    const second = [`${PREFIX}t/b1.png`, `${PREFIX}t/b2.png`];
    await upload([...first, ...second]);
    const flaky: ClassifyDeps = {
      ...deps,
      images: {
        get: (ref) =>
          ref.key.endsWith('flaky.png')
            ? Promise.reject(new TransientError('aws/unavailable', 'injected: S3 is unavailable'))
            : deps.images.get(ref),
      },
    };
    const small = new ImageLabeler(deps.labeler.classifier, { ...deps.labeler.settings, batchSize: 2 });

    const report = await classifyRecords(
      [withBucket(message('A', first, eTag, size)), withBucket(message('B', second, eTag, size))],
      { ...flaky, labeler: small },
    );

    assert.deepEqual(
      runs.map((r) => r.count),
      [2, 1, 1],
      'runs: [a1 a2] [flaky b1] [b2], the flaky image packed out',
    );
    assert.deepEqual(report.failedMessageIds, ['A']);
    assert.equal(report.counts.retried, 1);
    assert.equal(report.counts.labeled, 4);
    for (const key of [...second, `${PREFIX}t/a1.png`]) {
      assert.equal((await store.getByImage(stack.names.imagesBucket, key))[0]?.status, 'ok', key);
    }
    assert.deepEqual(await store.getByImage(stack.names.imagesBucket, `${PREFIX}t/flaky.png`), []);
  });

  it('fails only the message whose S3 key cannot be decoded; the rest of the batch is labeled', async () => {
    const good = `${PREFIX}k/good.png`;
    await upload([good]);
    const broken = message('broken', ['x'], eTag, size);
    const report = await classifyRecords(
      [
        withBucket(message('good', [good], eTag, size)),
        { messageId: 'broken', body: broken.body.replace('"key":"x"', `"key":"${PREFIX}%E0%A4%A.png"`) },
      ],
      deps,
    );
    assert.deepEqual(report.failedMessageIds, ['broken']);
    assert.equal(report.counts.invalid, 1);
    assert.equal(report.counts.labeled, 1);
    assert.equal((await store.getByImage(stack.names.imagesBucket, good))[0]?.status, 'ok');
  });

  it('sends back only the images labelAll had not handed out when it throws mid-batch (injected)', async () => {
    const first = [`${PREFIX}s/c1.png`, `${PREFIX}s/c2.png`];
    const second = [`${PREFIX}s/d1.png`];
    await upload([...first, ...second]);
    class StopsAfterOneRun extends ImageLabeler {
      override async *labelAll<T>(items: Iterable<T>, read: ReadImage<T>) {
        let runs = 0;
        for await (const run of super.labelAll(items, read)) {
          if (runs++ > 0) throw new Error('injected: the labeler failed');
          yield run;
        }
      }
    }
    const labeler = new StopsAfterOneRun(deps.labeler.classifier, { ...deps.labeler.settings, batchSize: 2 });

    const report = await classifyRecords(
      [withBucket(message('C', first, eTag, size)), withBucket(message('D', second, eTag, size))],
      { ...deps, labeler },
    );

    assert.deepEqual(report.failedMessageIds, ['D']);
    assert.equal(report.counts.labeled, 2);
    assert.equal(report.counts.retried, 1);
    assert.equal((await store.getByImage(stack.names.imagesBucket, first[1] as string))[0]?.status, 'ok');
  });
});
