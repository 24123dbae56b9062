import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { type DynamoDbLocal, startDynamoDbLocal } from '../../local/dynamodb-local.ts';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { DynamoResultsStore, labelShard } from '../../shared/aws/dynamo-results-store.ts';
import { resultsTableDefinition } from '../../shared/aws/table-definitions.ts';
import { answerQuery, type QueryDefaults } from '../../shared/labeling/query-api.ts';
import type { ImageResult } from '../../shared/labeling/results.ts';
import { paddedSequencer } from '../../shared/labeling/s3-event.ts';
import { RESULTS_TABLE } from '../../shared/settings.ts';

const model = { id: 'm', version: '1' };
const timings = { readMs: 1, preprocessMs: 1, inferMs: 1, batchSize: 1 };
const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function result(key: string, labels: ImageResult['labels']): ImageResult {
  return {
    bucket: 'b',
    key,
    eTag: 'e1',
    size: 10,
    sequencer: paddedSequencer('0A'),
    model,
    status: 'ok',
    labels,
    timings,
    labeledAt: '2026-11-27T00:00:00.000Z',
  };
}

type ErrorBody = { error: { code: string; message: string } };
type PageBody = { items: Array<{ key: string; score: number }>; cursor?: string };

describe('the query API on DynamoDB Local: client errors are 400s, server errors say nothing internal', () => {
  let dynamo: DynamoDbLocal;
  let clients: AwsClients;
  let store: DynamoResultsStore;
  const logged: Array<Record<string, unknown> | undefined> = [];
  const defaults: QueryDefaults = {
    bucket: 'b',
    model,
    log: { error: (_message, extra) => logged.push(extra) },
  };
  const get = (path: string, query: Record<string, string> = {}, on = store) =>
    answerQuery({ method: 'GET', path, query }, on, defaults);
  const expectError = async (
    response: Promise<{ status: number; body: unknown }>,
    status: number,
    code: string,
  ): Promise<string> => {
    const r = await response;
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal((r.body as ErrorBody).error.code, code);
    return (r.body as ErrorBody).error.message;
  };

  before(async () => {
    dynamo = await startDynamoDbLocal();
    clients = createAwsClients({
      region: 'us-east-1',
      endpoints: { dynamodb: dynamo.endpoint },
      local: true,
    });
    await clients.dynamo.send(new CreateTableCommand(resultsTableDefinition('results')));
    store = new DynamoResultsStore(clients.db, 'results', 0.05);
    for (let i = 0; i < 4; i++) {
      await store.put(
        result(`p-${i}.png`, [
          { label: 'P', score: 0.5 + i / 10 },
          { label: 'Q', score: 0.3 },
        ]),
      );
    }
  });
  after(async () => {
    clients?.dynamo.destroy();
    await dynamo?.stop();
  });

  it('answers a path with broken percent-encoding with 400 query/bad-request', async () => {
    await expectError(get('/labels/%E0%A4%A'), 400, 'query/bad-request');
    await expectError(get('/images/%ZZ'), 400, 'query/bad-request');
    await expectError(get('/labels/P', { minScore: '2' }), 400, 'query/bad-request');
    await expectError(get('/labels/P', { limit: '' }), 400, 'query/bad-request');
  });

  it('reads the key from the raw query string strictly: + is a plus, a bad escape or no key is a 400', async () => {
    await store.put(result('q/a+b c.png', [{ label: 'P', score: 0.2 }]));
    const raw = (rawQuery: string) =>
      answerQuery({ method: 'GET', path: '/images', query: {}, rawQuery }, store, defaults);
    const found = await raw(`key=${encodeURIComponent('q/a+b c.png')}&bucket=b`);
    assert.equal(found.status, 200, JSON.stringify(found.body));
    assert.deepEqual(
      (found.body as { items: ImageResult[] }).items.map((r) => r.key),
      ['q/a+b c.png'],
    );
    assert.equal((await raw('key=q/a+b%20c.png')).status, 200);
    await expectError(raw('key=q/a%20b%20c.png'), 404, 'results/not-found');
    await expectError(raw('key=%E0%A4%A'), 400, 'query/bad-request');
    await expectError(raw('bucket=b'), 400, 'query/bad-request');
    await expectError(raw('key='), 400, 'query/bad-request');
  });

  it('refuses labels and keys longer than a DynamoDB key can be, before asking DynamoDB', async () => {
    const message = await expectError(get(`/labels/${'x'.repeat(3000)}`), 400, 'query/bad-request');
    assert.match(message, /at most 2048/);
    await expectError(get(`/images/${'k'.repeat(2100)}`), 400, 'query/bad-request');
    await expectError(get('/labels/P', { model: 'm'.repeat(2100) }), 400, 'query/bad-request');
  });

  it('pages with the cursor it returned, and refuses every other cursor with 400 query/bad-cursor', async () => {
    const first = await get('/labels/P', { minScore: '0.55', limit: '1' });
    assert.equal(first.status, 200);
    const page = first.body as PageBody;
    assert.deepEqual(
      page.items.map((h) => h.key),
      ['p-3.png'],
    );
    assert.ok(page.cursor);
    const next = await get('/labels/P', { minScore: '0.55', limit: '5', cursor: page.cursor });
    assert.deepEqual(
      (next.body as PageBody).items.map((h) => h.key),
      ['p-2.png', 'p-1.png'],
    );

    const fromQ = ((await get('/labels/Q', { limit: '1' })).body as PageBody).cursor;
    assert.ok(fromQ);
    const decoded = JSON.parse(Buffer.from(page.cursor, 'base64url').toString()) as {
      of: string;
      after: unknown[];
    };
    assert.deepEqual(Object.keys(decoded).sort(), ['after', 'of']);
    assert.equal(decoded.after.length, RESULTS_TABLE.labelIndex.shards);
    // A position per shard: p-0's own shard, and one it does not hash to.
    const at = (shard: number, position: unknown) =>
      decoded.after.map((p, s) => (s === shard ? position : p));
    const home = labelShard('b', 'p-0.png');
    const away = (home + 1) % RESULTS_TABLE.labelIndex.shards;
    const refused: Record<string, [cursor: string, why: RegExp]> = {
      garbage: ['garbage!', /base64url/],
      'not JSON': [Buffer.from('{').toString('base64url'), /not JSON/],
      '{}': [cursorOf({}), /not a cursor/],
      '123': [cursorOf(123), /not a cursor/],
      null: [cursorOf(null), /not a cursor/],
      '[]': [cursorOf([]), /not a cursor/],
      'a number where the label is': [cursorOf({ ...decoded, of: 1 }), /another label or model/],
      'an extra attribute': [cursorOf({ ...decoded, extra: 'x' }), /not a cursor/],
      "another label's cursor": [fromQ, /another label or model/],
      'another model': [cursorOf({ ...decoded, of: 'm@2#P' }), /another label or model/],
      'positions for another shard count': [cursorOf({ ...decoded, after: [null, null, null] }), /shards/],
      'a position that is not a pair': [
        cursorOf({ ...decoded, after: at(home, ['0.600000#b/p-0.png']) }),
        /position/,
      ],
      'a rank of 0': [cursorOf({ ...decoded, after: at(home, ['0.600000#b/p-0.png', 0]) }), /position/],
      'a score under the floor': [
        cursorOf({ ...decoded, after: at(home, ['0.100000#b/p-0.png', 1]) }),
        /outside this query's scores/,
      ],
      'an image in a shard it does not hash to': [
        cursorOf({ ...decoded, after: at(away, ['0.600000#b/p-0.png', 1]) }),
        /does not hash to/,
      ],
    };
    for (const [what, [cursor, why]] of Object.entries(refused)) {
      const message = await expectError(
        get('/labels/P', { minScore: '0.55', cursor }),
        400,
        'query/bad-cursor',
      );
      assert.match(message, why, what);
    }
    // The same position in its own shard is a cursor this query could have returned.
    const resumed = await get('/labels/P', {
      minScore: '0.55',
      cursor: cursorOf({ ...decoded, after: at(home, ['0.600000#b/p-0.png', 1]) }),
    });
    assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
  });

  it('answers 503 with fixed words when DynamoDB cannot be reached, and logs the details', async () => {
    // Nothing listens on port 1: a real connection failure, not a mock.
    const down = createAwsClients({
      region: 'us-east-1',
      endpoints: { dynamodb: 'http://127.0.0.1:1' },
      local: true,
    });
    try {
      const unreachable = new DynamoResultsStore(down.db, 'results');
      logged.length = 0;
      const message = await expectError(get('/labels/P', {}, unreachable), 503, 'aws/timeout');
      assert.equal(message, 'the results store is unavailable; retry later');
      assert.match(String(logged[0]?.error), /ECONNREFUSED|connect/);
    } finally {
      down.dynamo.destroy();
    }
  });

  it('answers 500 internal/unexpected without the exception text when DynamoDB refuses the request', async () => {
    const missingTable = new DynamoResultsStore(clients.db, 'no-such-table');
    logged.length = 0;
    const message = await expectError(get('/images/p-1.png', {}, missingTable), 500, 'internal/unexpected');
    assert.equal(message, 'the query failed on the server');
    assert.match(String(logged[0]?.error), /ResourceNotFound|non-existent table/);
  });
});
