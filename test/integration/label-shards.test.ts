import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { type DynamoDbLocal, startDynamoDbLocal } from '../../local/dynamodb-local.ts';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { DynamoResultsStore, labelPk, labelShard } from '../../shared/aws/dynamo-results-store.ts';
import { resultsTableDefinition } from '../../shared/aws/table-definitions.ts';
import type { ImageResult, LabelHit } from '../../shared/labeling/results.ts';
import { paddedSequencer } from '../../shared/labeling/s3-event.ts';
import { RESULTS_TABLE } from '../../shared/settings.ts';

const model = { id: 'm', version: '1' };
const timings = { readMs: 1, preprocessMs: 1, inferMs: 1, batchSize: 1 };
const { labelIndex } = RESULTS_TABLE;
/** The rank indexes a label query reads per shard: by-label and by-label-2 (decision 0027). */
const RANK_INDEXES = 2;
const IMAGES = 300;

function result(key: string, score: number, overrides: Partial<ImageResult> = {}): ImageResult {
  return {
    bucket: 'b',
    key,
    eTag: 'e1',
    size: 10,
    sequencer: paddedSequencer('0A'),
    model,
    status: 'ok',
    labels: [
      { label: 'Shirt', score },
      { label: 'T-shirt/top', score: Math.min(0.04, 1 - score) },
    ],
    timings,
    labeledAt: '2026-11-27T00:00:00.000Z',
    ...overrides,
  };
}

/** 95 distinct scores over 300 images: many ties, which land in different shards. */
const scoreOf = (i: number) => Number((0.05 + ((i * 37) % 95) / 100).toFixed(6));
const keyOf = (i: number) => `images/${String(i).padStart(3, '0')}.png`;

describe('the by-label index is sharded; label queries merge the shards (DynamoDB Local)', () => {
  let dynamo: DynamoDbLocal;
  let clients: AwsClients;
  let store: DynamoResultsStore;
  const commands: string[] = [];

  before(async () => {
    dynamo = await startDynamoDbLocal();
    clients = createAwsClients({
      region: 'us-east-1',
      endpoints: { dynamodb: dynamo.endpoint },
      local: true,
    });
    // Records which operations reach DynamoDB: label queries must be Queries, never a Scan.
    clients.db.middlewareStack.add(
      (next, context) => (args) => {
        commands.push(String(context.commandName));
        return next(args);
      },
      { step: 'initialize', name: 'recordCommands' },
    );
    await clients.dynamo.send(new CreateTableCommand(resultsTableDefinition('results')));
    store = new DynamoResultsStore(clients.db, 'results', 0.05);
    // A single-label dataset, written through the store as the workers write it.
    const indexes = Array.from({ length: IMAGES }, (_, i) => i);
    for (let start = 0; start < IMAGES; start += 10) {
      const written = await Promise.all(
        indexes.slice(start, start + 10).map((i) => store.put(result(keyOf(i), scoreOf(i)))),
      );
      assert.deepEqual(new Set(written), new Set(['written']));
    }
  });
  after(async () => {
    clients?.dynamo.destroy();
    await dynamo?.stop();
  });

  async function allPages(query: { label: string; minScore: number; limit: number }): Promise<{
    hits: LabelHit[];
    pages: number;
  }> {
    const hits: LabelHit[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.queryByLabel({ model, ...query, ...(cursor ? { cursor } : {}) });
      assert.ok(page.items.length <= query.limit);
      hits.push(...page.items);
      cursor = page.cursor;
      pages++;
      assert.ok(pages <= IMAGES + 1, 'the cursor never ends');
    } while (cursor);
    return { hits, pages };
  }

  it("spreads one label's index items over every shard, each image in the shard its hash names", async () => {
    // docs/decisions/0011: 4 keys carry a single-label dataset at the stack's maximum.
    assert.ok(labelIndex.shards >= 4);
    const unsharded = await clients.db.send(
      new QueryCommand({
        TableName: 'results',
        IndexName: labelIndex.name,
        KeyConditionExpression: '#p = :p',
        ExpressionAttributeNames: { '#p': labelIndex.partitionKey },
        ExpressionAttributeValues: { ':p': `${model.id}@${model.version}#Shirt` },
      }),
    );
    assert.equal(unsharded.Items?.length, 0, 'nothing is written under the one hot key');
    const perShard: number[] = [];
    for (let shard = 0; shard < labelIndex.shards; shard++) {
      const keys: string[] = [];
      let startKey: Record<string, unknown> | undefined;
      do {
        const response = await clients.db.send(
          new QueryCommand({
            TableName: 'results',
            IndexName: labelIndex.name,
            KeyConditionExpression: '#p = :p',
            ExpressionAttributeNames: { '#p': labelIndex.partitionKey },
            ExpressionAttributeValues: { ':p': labelPk(model, 'Shirt', shard) },
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        );
        keys.push(...(response.Items ?? []).map((item) => String(item.key)));
        startKey = response.LastEvaluatedKey;
      } while (startKey);
      for (const key of keys) assert.equal(labelShard('b', key), shard, key);
      perShard.push(keys.length);
    }
    assert.equal(
      perShard.reduce((a, b) => a + b, 0),
      IMAGES,
      `per shard: ${perShard.join(', ')}`,
    );
    // The hash is deterministic, so this is no flaky statistic: every shard takes a fair share.
    for (const count of perShard)
      assert.ok(count >= IMAGES / labelIndex.shards / 2, `per shard: ${perShard}`);
  });

  it('pages a single label 7 at a time: every image exactly once, best first, ties in labelSk order', async () => {
    const { hits, pages } = await allPages({ label: 'Shirt', minScore: 0.05, limit: 7 });
    assert.equal(hits.length, IMAGES);
    assert.equal(new Set(hits.map((h) => h.key)).size, IMAGES, 'an image came twice');
    assert.ok(pages >= Math.ceil(IMAGES / 7) && pages <= Math.ceil(IMAGES / 7) + 1, `${pages} pages`);
    // Best first; equal scores in descending labelSk (score, then bucket/key) order, as one
    // unsharded index would list them.
    const expected = Array.from({ length: IMAGES }, (_, i) => ({ key: keyOf(i), score: scoreOf(i) })).sort(
      (a, b) => b.score - a.score || (a.key < b.key ? 1 : -1),
    );
    assert.deepEqual(
      hits.map((h) => `${h.key}:${h.score}`),
      expected.map((e) => `${e.key}:${e.score}`),
    );
  });

  it('pages above a score floor, reading each shard with one Query per rank index per page and never a Scan', async () => {
    commands.length = 0;
    const { hits, pages } = await allPages({ label: 'Shirt', minScore: 0.5, limit: 7 });
    const above = Array.from({ length: IMAGES }, (_, i) => i).filter((i) => scoreOf(i) >= 0.5);
    assert.deepEqual(hits.map((h) => h.key).sort(), above.map(keyOf).sort());
    assert.ok(hits.every((h, i) => h.score >= 0.5 && (i === 0 || h.score <= (hits[i - 1]?.score ?? 1))));
    assert.ok(commands.length > 0);
    assert.ok(
      commands.every((c) => c === 'QueryCommand'),
      commands.join(),
    );
    // At most one Query per shard and rank index per page (decision 0027): an exhausted shard is not read again.
    assert.ok(
      commands.length <= pages * labelIndex.shards * RANK_INDEXES,
      `${commands.length} Queries for ${pages} pages`,
    );
  });

  it('returns all of a label in one page when the limit allows, with no cursor', async () => {
    const page = await store.queryByLabel({ model, label: 'Shirt', minScore: 0.05, limit: 1000 });
    assert.equal(page.items.length, IMAGES);
    assert.equal(page.cursor, undefined);
  });

  it('keeps one index item per image when a re-upload changes its score: same shard, overwritten', async () => {
    const key = keyOf(7);
    const previous = result(key, scoreOf(7));
    const reuploaded = result(key, 0.999, { eTag: 'e2', sequencer: paddedSequencer('0B') });
    assert.equal(await store.put(reuploaded, previous), 'written');
    const { hits } = await allPages({ label: 'Shirt', minScore: 0.05, limit: 7 });
    assert.equal(hits.length, IMAGES);
    assert.deepEqual(
      hits.filter((h) => h.key === key).map((h) => h.score),
      [0.999],
    );
    assert.equal(hits[0]?.key, key);
  });
});
