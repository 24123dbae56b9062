// `jobs start --dry-run`'s count against the local emulators: the real listing (folder
// markers left out, as the planner does), a limit that makes the count a lower bound, and
// mode `stale` reading the real results table as the workers do (same eTag: skipped).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { jobCountPorts } from '../../shared/aws/count-objects.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import { mapLimit } from '../../shared/labeling/image-labeler.ts';
import { countJobImages } from '../../shared/labeling/job-estimate.ts';
import type { ImageResult, ModelRef } from '../../shared/labeling/results.ts';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const model: ModelRef = { id: 'estimate-model', version: '1' };

describe('job estimate count (local emulators)', () => {
  let stack: LocalStack;
  const bucket = 'labeler-images';
  const keys = Array.from({ length: 25 }, (_, i) => `estimate/${String(i).padStart(3, '0')}.jpg`);
  const ports = () => jobCountPorts(stack.clients, stack.names.resultsTable, bucket, 'estimate/', model);

  before(async () => {
    stack = await startLocalStack({ worker: false, planner: false, log: quiet });
    await mapLimit(keys, 8, (key) =>
      stack.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from(key) })),
    );
    // A folder marker is not an image: the planner skips it, so the count does.
    await stack.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'estimate/sub/', Body: '' }));
    // Results of this model: three with the object's content, one of an older content.
    const store = new DynamoResultsStore(stack.clients.db, stack.names.resultsTable);
    const result = async (key: string, eTag?: string): Promise<ImageResult> => {
      const head = await stack.clients.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return {
        bucket,
        key,
        eTag: eTag ?? String(head.ETag).replaceAll('"', ''),
        size: key.length,
        sequencer: '0',
        model,
        status: 'ok',
        labels: [{ label: 'shirt', score: 0.9 }],
        timings: { readMs: 1, preprocessMs: 1, inferMs: 1, batchSize: 1 },
        labeledAt: new Date().toISOString(),
      };
    };
    for (const key of keys.slice(0, 3)) await store.put(await result(key));
    await store.put(await result(keys[3] as string, 'an-older-content'));
  });
  after(async () => {
    await stack?.stop();
  });

  it('mode all: every object under the prefix, folder markers left out', async () => {
    assert.deepEqual(await countJobImages(ports(), { mode: 'all' }), {
      objects: 25,
      images: 25,
      complete: true,
      mode: 'all',
    });
  });

  it('mode stale: the objects this model version has not labeled with their content', async () => {
    // Three labeled with the same content are skipped; the re-uploaded one is labeled again.
    assert.deepEqual(await countJobImages(ports(), { mode: 'stale' }), {
      objects: 25,
      images: 22,
      complete: true,
      mode: 'stale',
    });
    const other = jobCountPorts(stack.clients, stack.names.resultsTable, bucket, 'estimate/', {
      id: 'estimate-model',
      version: '2',
    });
    assert.equal((await countJobImages(other, { mode: 'stale' })).images, 25, 'another version labeled none');
  });

  it('stops at the limit and says the count is a lower bound', async () => {
    assert.deepEqual(await countJobImages(ports(), { mode: 'stale', atMost: 10 }), {
      objects: 10,
      images: 7,
      complete: false,
      mode: 'stale',
    });
    // Exactly as many as there are: nothing left unlisted.
    assert.equal((await countJobImages(ports(), { mode: 'all', atMost: 25 })).complete, true);
  });
});
