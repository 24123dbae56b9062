import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createAwsClients } from '../../shared/aws/clients.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import type { ImageResult } from '../../shared/labeling/results.ts';
import { paddedSequencer } from '../../shared/labeling/s3-event.ts';
import { loadModelBundle } from '../../shared/model/manifest.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { RESOURCE_NAMES } from '../../shared/settings.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { LabelerProcess } from '../helpers/labeler-process.ts';
import { waitFor } from '../helpers/wait.ts';

describe('labeler query against a running local stack: output shape and clean errors', () => {
  let dataDir: string;
  let up: LabelerProcess;
  const query = (...args: string[]) => runCli(['query', ...args, '--data-dir', dataDir]);

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-query-'));
    up = new LabelerProcess(['local', 'up', '--data-dir', dataDir]);
    const endpoints = await waitFor(
      `endpoints.json (local up said: ${up.output})`,
      async () => readFile(join(dataDir, 'endpoints.json'), 'utf8').catch(() => undefined),
      120_000,
    );
    const { region, endpoints: e } = JSON.parse(endpoints) as {
      region: string;
      endpoints: { dynamodb: string };
    };

    // Results written straight to the stack's table, with scores that have more than six decimals.
    const { manifest } = await loadModelBundle(DEFAULT_MODEL_DIR);
    const base = {
      bucket: RESOURCE_NAMES.imagesBucket,
      eTag: 'e1',
      size: 10,
      sequencer: paddedSequencer('0A'),
      model: { id: manifest.id, version: manifest.version },
      timings: { readMs: 1, preprocessMs: 1, inferMs: 1, batchSize: 1 },
      labeledAt: '2026-11-27T00:00:00.000Z',
    };
    const results: ImageResult[] = [
      {
        ...base,
        key: 'images/q/bag.png',
        status: 'ok',
        labels: [
          { label: 'Bag', score: 0.987654321 },
          { label: 'Sandal', score: 0.0123456789 },
        ],
      },
      { ...base, key: 'images/q/bag2.png', status: 'ok', labels: [{ label: 'Bag', score: 0.5 }] },
      {
        ...base,
        key: 'images/q/broken.png',
        status: 'failed',
        labels: [],
        error: { code: 'image/decode-failed', message: 'broken' },
      },
    ];
    const clients = createAwsClients({ region, endpoints: { dynamodb: e.dynamodb }, local: true });
    try {
      const store = new DynamoResultsStore(clients.db, RESOURCE_NAMES.resultsTable);
      for (const r of results) await store.put(r);
    } finally {
      clients.dynamo.destroy();
    }
  });
  after(async () => {
    if (up) {
      up.kill('SIGINT');
      await up.exited;
    }
    await rm(dataDir, { recursive: true, force: true });
  });

  it('prints results and hits with scores rounded to six decimals, as label and local run do', async () => {
    const image = await query('image', 'images/q/bag.png');
    assert.equal(image.code, 0, image.stderr);
    const [printed] = jsonLines(image.stdout);
    assert.equal(printed?.status, 'ok');
    assert.deepEqual(printed?.labels, [
      { label: 'Bag', score: 0.987654 },
      { label: 'Sandal', score: 0.012346 },
    ]);
    assert.equal(printed?.timings, undefined, 'the printed shape, not the stored item');

    const failed = jsonLines((await query('image', 'images/q/broken.png')).stdout)[0];
    assert.deepEqual(failed?.error, { code: 'image/decode-failed', message: 'broken' });
    assert.equal(failed?.labels, undefined);

    const hits = await query('label', 'Bag', '--limit', '1');
    assert.equal(hits.code, 0, hits.stderr);
    assert.deepEqual(jsonLines(hits.stdout), [
      {
        bucket: RESOURCE_NAMES.imagesBucket,
        key: 'images/q/bag.png',
        label: 'Bag',
        score: 0.987654,
        rank: 1,
      },
    ]);
    const cursor = /next: --cursor (\S+)/.exec(hits.stderr)?.[1];
    assert.ok(cursor, hits.stderr);
    const rest = await query('label', 'Bag', '--cursor', cursor);
    assert.deepEqual(
      jsonLines(rest.stdout).map((h) => h.key),
      ['images/q/bag2.png'],
    );
  });

  it('refuses a cursor it did not return with exit 2 and the error code, not a stack trace', async () => {
    for (const cursor of ['garbage', Buffer.from('{}').toString('base64url')]) {
      const run = await query('label', 'Bag', '--cursor', cursor);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /\[query\/bad-cursor\]/);
      assert.doesNotMatch(run.stderr, /RangeError|\n\s+at /);
      assert.equal(run.stdout, '');
    }
  });

  it("says a label is unknown, lists the model's labels, and exits 2", async () => {
    const run = await query('label', 'Handbag');
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unknown label "Handbag".*"Bag".*"Ankle boot"/);
    assert.equal(run.stdout, '');
  });
});
