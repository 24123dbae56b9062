import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { type DynamoDbLocal, startDynamoDbLocal } from '../../local/dynamodb-local.ts';
import { type QueryApiServer, startQueryApiServer } from '../../local/query-api-server.ts';
import { type AwsClients, createAwsClients, LOCAL_CREDENTIALS } from '../../shared/aws/clients.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import { QueryApiClient, QueryApiError } from '../../shared/aws/query-api-client.ts';
import { resultsTableDefinition } from '../../shared/aws/table-definitions.ts';
import { TransientError } from '../../shared/errors.ts';
import type { ImageResult, ResultsStore } from '../../shared/labeling/results.ts';
import { paddedSequencer } from '../../shared/labeling/s3-event.ts';

const REGION = 'us-east-1';
const model = { id: 'm', version: '1' };

function result(key: string, score: number): ImageResult {
  return {
    bucket: 'b',
    key,
    eTag: 'e1',
    size: 10,
    sequencer: paddedSequencer('0A'),
    model,
    status: 'ok',
    labels: [{ label: 'Bag', score }],
    timings: { readMs: 1, preprocessMs: 1, inferMs: 1, batchSize: 1 },
    labeledAt: '2026-11-27T00:00:00.000Z',
  };
}

// Keys a signature must survive: spaces, '+', unicode, slashes, characters URLs escape.
const KEYS = ['images/a b+c.png', 'images/ünïcødé/猫.png', "images/x%y&z=1?#'.png"];

describe('the query API through its signed HTTP client, served by the local server that checks SigV4', () => {
  let dynamo: DynamoDbLocal;
  let clients: AwsClients;
  let store: DynamoResultsStore;
  let server: QueryApiServer;
  const client = (
    credentials: { accessKeyId: string; secretAccessKey: string } = LOCAL_CREDENTIALS,
    url = server.url,
  ) => new QueryApiClient({ url, region: REGION, credentials: async () => credentials, baseDelayMs: 1 });
  const serve = (on: ResultsStore) =>
    startQueryApiServer({
      store: on,
      defaults: { bucket: 'b', model },
      region: REGION,
      credentials: LOCAL_CREDENTIALS,
    });

  before(async () => {
    dynamo = await startDynamoDbLocal();
    clients = createAwsClients({ region: REGION, endpoints: { dynamodb: dynamo.endpoint }, local: true });
    await clients.dynamo.send(new CreateTableCommand(resultsTableDefinition('results')));
    store = new DynamoResultsStore(clients.db, 'results');
    for (const [i, key] of KEYS.entries()) await store.put(result(key, 0.9 - i / 10));
    server = await serve(store);
  });
  after(async () => {
    await server?.close();
    clients?.dynamo.destroy();
    await dynamo?.stop();
  });

  it('answers signed requests through the real handler: results by image, and label pages with their cursor', async () => {
    for (const key of KEYS) {
      const results = await client().getByImage('b', key);
      assert.deepEqual(
        results.map((r) => [r.key, r.labels]),
        [[key, [{ label: 'Bag', score: 0.9 - KEYS.indexOf(key) / 10 }]]],
        key,
      );
    }
    assert.deepEqual(
      await client().getByImage('b', 'images/none.png'),
      [],
      'a 404 results/not-found is no results',
    );

    const first = await client().queryByLabel({ model, label: 'Bag', minScore: 0.5, limit: 2 });
    assert.deepEqual(
      first.items.map((h) => h.key),
      KEYS.slice(0, 2),
    );
    assert.ok(first.cursor);
    const rest = await client().queryByLabel({
      model,
      label: 'Bag',
      minScore: 0.5,
      limit: 2,
      cursor: first.cursor,
    });
    assert.deepEqual(
      rest.items.map((h) => h.key),
      [KEYS[2]],
    );
    assert.equal(rest.cursor, undefined);
  });

  it('reads each key exactly as stored: dot segments, empty segments and a trailing slash reach their own result', async () => {
    // Each of these keys, put in a URL path, is normalised (by fetch, SigV4 or API Gateway)
    // into another key, another route, or a signature mismatch.
    const dotted = [
      'images/test-00001.png',
      'images/../images/test-00001.png',
      'images/dots/../real.png',
      'images/real.png',
      '../labels/Bag',
      'images/..',
      'images/.',
      'images/./x.png',
      'images//x.png',
      'images/x.png',
      'images/trailing/',
      './%2E%2E/+ ?#.png',
    ];
    for (const [i, key] of dotted.entries()) await store.put(result(key, 0.3 + i / 100));
    for (const [i, key] of dotted.entries()) {
      const results = await client().getByImage('b', key);
      assert.deepEqual(
        results.map((r) => [r.key, r.labels[0]?.score]),
        [[key, 0.3 + i / 100]],
        key,
      );
    }
    assert.deepEqual(await client().getByImage('b', 'images/dots/none/../x.png'), []);
  });

  it("maps the API's problem bodies to typed errors with its codes", async () => {
    await assert.rejects(
      client().queryByLabel({ model, label: 'Bag', minScore: 0.5, limit: 2, cursor: 'garbage!' }),
      (error: unknown) =>
        error instanceof QueryApiError &&
        error.code === 'query/bad-cursor' &&
        error.status === 400 &&
        error.permanent,
    );
    await assert.rejects(client().get('/nothing/here'), { code: 'http/not-found', status: 404 });
  });

  it('refuses a request signed with the wrong secret or access key with 403, as API Gateway IAM auth does', async () => {
    for (const credentials of [
      { accessKeyId: LOCAL_CREDENTIALS.accessKeyId, secretAccessKey: 'not-the-secret' },
      { accessKeyId: 'someone-else', secretAccessKey: LOCAL_CREDENTIALS.secretAccessKey },
    ]) {
      await assert.rejects(client(credentials).getByImage('b', KEYS[0] as string), (error: unknown) => {
        assert.ok(error instanceof QueryApiError, String(error));
        assert.equal(error.code, 'query-api/forbidden');
        assert.equal(error.status, 403);
        return true;
      });
    }
  });

  it('refuses unsigned requests, and signed ones whose path or query was changed after signing', async () => {
    const unsigned = await fetch(`${server.url}/images/${encodeURIComponent(KEYS[0] as string)}`);
    assert.equal(unsigned.status, 403);
    assert.deepEqual(await unsigned.json(), { message: 'Missing Authentication Token' });

    // A genuine signature for one request, replayed on another.
    const captured: Array<{ url: string; headers: Record<string, string> }> = [];
    const realFetch = globalThis.fetch;
    globalThis.fetch = async (input, init) => {
      captured.push({ url: String(input), headers: init?.headers as Record<string, string> });
      return realFetch(input, init);
    };
    try {
      await client().getByImage('b', KEYS[0] as string);
    } finally {
      globalThis.fetch = realFetch;
    }
    const [signed] = captured;
    assert.ok(signed);
    assert.equal(
      (await fetch(signed.url, { headers: signed.headers })).status,
      200,
      'the replay itself is fine',
    );
    for (const url of [
      signed.url.replace('a%20b', 'a%20c'),
      signed.url.replace('bucket=b', 'bucket=other'),
    ]) {
      assert.notEqual(url, signed.url);
      const tampered: Response = await fetch(url, { headers: signed.headers });
      assert.equal(tampered.status, 403, url);
      assert.match(
        ((await tampered.json()) as { message: string }).message,
        /signature we calculated does not match/,
      );
    }
  });

  it('retries a 503 with backoff and then answers (store throttling injected)', async () => {
    let calls = 0;
    const flaky: ResultsStore = Object.create(store);
    flaky.getByImage = async (bucket, key) => {
      calls++;
      if (calls <= 2) throw new TransientError('aws/throttled', 'injected throttling');
      return store.getByImage(bucket, key);
    };
    const flakyServer = await serve(flaky);
    try {
      const results = await client(LOCAL_CREDENTIALS, flakyServer.url).getByImage('b', KEYS[0] as string);
      assert.equal(results.length, 1);
      assert.equal(calls, 3);

      calls = -10;
      await assert.rejects(client(LOCAL_CREDENTIALS, flakyServer.url).getByImage('b', KEYS[0] as string), {
        code: 'aws/throttled',
        status: 503,
        permanent: false,
      });
      assert.equal(calls, -6, 'four tries, then the error');
    } finally {
      await flakyServer.close();
    }
  });

  it('says the API cannot be reached, with a code, when nothing listens', async () => {
    await assert.rejects(client(LOCAL_CREDENTIALS, 'http://127.0.0.1:1').getByImage('b', 'k'), {
      code: 'query-api/unreachable',
    });
  });
});
