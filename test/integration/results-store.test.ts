import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { type DynamoDbLocal, startDynamoDbLocal } from '../../local/dynamodb-local.ts';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { addToCounter, DynamoJobsStore, shardPk } from '../../shared/aws/dynamo-jobs-store.ts';
import {
  DynamoResultsStore,
  imagePk,
  labelPk,
  labelShard,
  labelSk,
  modelSk,
} from '../../shared/aws/dynamo-results-store.ts';
import { jobsTableDefinition, resultsTableDefinition } from '../../shared/aws/table-definitions.ts';
import { LabelerError, TransientError } from '../../shared/errors.ts';
import type { ImageResult } from '../../shared/labeling/results.ts';
import { paddedSequencer } from '../../shared/labeling/s3-event.ts';
import { describeJobsStoreContract } from '../helpers/jobs-store-contract.ts';
import { describeResultsStoreContract, model, storeResult } from '../helpers/results-store-contract.ts';

const result = storeResult;

describe('the DynamoDB results store (DynamoDB Local)', () => {
  let dynamo: DynamoDbLocal;
  let clients: AwsClients;
  let store: DynamoResultsStore;
  let jobStore: DynamoResultsStore;
  let jobs: DynamoJobsStore;
  /** The DynamoDB operations the store sent, by name (a counter on the real client). */
  const sent: string[] = [];

  before(async () => {
    dynamo = await startDynamoDbLocal();
    clients = createAwsClients({
      region: 'us-east-1',
      endpoints: { dynamodb: dynamo.endpoint },
      local: true,
    });
    await clients.dynamo.send(new CreateTableCommand(resultsTableDefinition('results')));
    await clients.dynamo.send(new CreateTableCommand(jobsTableDefinition('jobs')));
    store = new DynamoResultsStore(clients.db, 'results', 0.05);
    jobStore = new DynamoResultsStore(clients.db, 'results', 0.05, 'jobs');
    jobs = new DynamoJobsStore(clients.db, 'jobs');
    clients.db.middlewareStack.add(
      (next, context) => (args) => {
        sent.push(context.commandName ?? '?');
        return next(args);
      },
      { step: 'initialize', name: 'countCommands' },
    );
  });
  after(async () => {
    clients?.dynamo.destroy();
    await dynamo?.stop();
  });

  // The semantics the in-memory store of the fast tier is held to (test/unit/memory-results-store.test.ts).
  describeResultsStoreContract('ddb', () => ({
    store,
    jobStore,
    ledger: jobs,
    counts: (jobId) => jobs.counts(jobId),
  }));
  describeJobsStoreContract(
    'ddb',
    () => jobs,
    (sendRecount) =>
      new DynamoJobsStore(clients.db, 'jobs', undefined, {
        inlineRecountMax: 0,
        recountPageLimit: 1,
        sendRecount,
      }),
  );

  const hits = async (label: string, minScore = 0) =>
    (await store.queryByLabel({ model, label, minScore, limit: 10 })).items.map((h) => `${h.key}:${h.score}`);

  it('reads a result written before decision 0027 by label, and its next write moves it to the new layout', async () => {
    // The layout before 0027, as it was written: a result item, and per indexed label an item of its own.
    const key = 'old-layout.png';
    const old = result({
      key,
      eTag: 'old',
      sequencer: paddedSequencer('10'),
      labels: [{ label: 'Old-A', score: 0.8 }],
    });
    const pk = imagePk('b', key);
    const { labeledAt, timings: t, model: m, ...rest } = old;
    await clients.db.send(
      new PutCommand({
        TableName: 'results',
        Item: {
          ...rest,
          pk,
          sk: modelSk(m),
          type: 'result',
          modelId: m.id,
          modelVersion: m.version,
          timings: t,
          labeledAt,
        },
      }),
    );
    await clients.db.send(
      new PutCommand({
        TableName: 'results',
        Item: {
          pk,
          sk: `${modelSk(m)}#top#01`,
          type: 'label',
          labelPk: labelPk(m, 'Old-A', labelShard('b', key)),
          labelSk: labelSk(0.8, 'b', key),
          bucket: 'b',
          key,
          label: 'Old-A',
          score: 0.8,
          rank: 1,
        },
      }),
    );
    assert.deepEqual(await hits('Old-A'), [`${key}:0.8`], 'found through its own index item');
    // A re-upload: the store reads the old result, and the write deletes its index item.
    const previous = (await store.findExisting([{ bucket: 'b', key }], model)).get(`b/${key}`);
    assert.ok(previous);
    const newer = result({
      key,
      eTag: 'new',
      sequencer: paddedSequencer('11'),
      labels: [{ label: 'New-A', score: 0.7 }],
    });
    assert.equal(await store.put(newer, previous), 'written');
    assert.deepEqual(await hits('Old-A'), [], 'the old index item went with the write');
    assert.deepEqual(await hits('New-A'), [`${key}:0.7`]);
    const items = await clients.db.send(
      new QueryCommand({
        TableName: 'results',
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': pk },
      }),
    );
    assert.equal(items.Items?.length, 1, 'one item: the result, carrying its index keys');
  });

  it('writes once per content: the same eTag, or an older event, is a duplicate', async () => {
    const first = result({ key: 'once.png', labels: [{ label: 'A', score: 0.9 }] });
    assert.equal(await store.put(first), 'written');
    assert.equal(await store.put(first), 'duplicate');
    assert.equal(
      await store.put(result({ key: 'once.png', eTag: 'old', sequencer: paddedSequencer('09') })),
      'duplicate',
    );
    assert.deepEqual(await store.getByImage('b', 'once.png'), [first]);
  });

  it('indexes labels at or above the floor, keeps the rest in the result, and starts label queries at the floor', async () => {
    const labels = [
      { label: 'F1', score: 0.9 },
      { label: 'F2', score: 0.06 },
      { label: 'F3', score: 0.01 },
    ];
    await store.put(result({ key: 'floor.png', labels }));
    assert.deepEqual((await store.getByImage('b', 'floor.png'))[0]?.labels, labels);
    assert.deepEqual(await hits('F1'), ['floor.png:0.9']);
    assert.deepEqual(await hits('F2'), ['floor.png:0.06']);
    assert.deepEqual(await hits('F3'), [], 'below the floor: not indexed');
    assert.deepEqual(await hits('F2', 0.5), []);
  });

  it('keeps the label index exact when an image is re-uploaded with other labels, then as a broken file', async () => {
    const v1 = result({
      key: 'again.png',
      labels: [
        { label: 'R1', score: 0.7 },
        { label: 'R2', score: 0.2 },
      ],
    });
    await store.put(v1);
    const v2 = result({
      key: 'again.png',
      eTag: 'e2',
      sequencer: paddedSequencer('0B'),
      labels: [{ label: 'R3', score: 0.95 }],
    });
    assert.equal(await store.put(v2, v1), 'written');
    assert.deepEqual(await hits('R3'), ['again.png:0.95']);
    assert.deepEqual(await hits('R1'), [], 'rank 1 was overwritten');
    assert.deepEqual(await hits('R2'), [], 'rank 2 from v1 was removed');
    const v3 = result({
      key: 'again.png',
      eTag: 'e3',
      sequencer: paddedSequencer('0C'),
      status: 'failed',
      error: { code: 'image/decode-failed', message: 'broken' },
    });
    assert.equal(await store.put(v3, v2), 'written');
    assert.deepEqual(await hits('R3'), []);
    assert.deepEqual(await store.getByImage('b', 'again.png'), [v3]);
  });

  it('pages label queries best first with a cursor', async () => {
    for (let i = 0; i < 5; i++) {
      await store.put(result({ key: `page-${i}.png`, labels: [{ label: 'P', score: 0.5 + i / 10 }] }));
    }
    const first = await store.queryByLabel({ model, label: 'P', minScore: 0.6, limit: 2 });
    assert.deepEqual(
      first.items.map((h) => h.key),
      ['page-4.png', 'page-3.png'],
    );
    assert.ok(first.cursor);
    const rest = await store.queryByLabel({
      model,
      label: 'P',
      minScore: 0.6,
      limit: 10,
      cursor: first.cursor,
    });
    assert.deepEqual(
      rest.items.map((h) => h.key),
      ['page-2.png', 'page-1.png'],
    );
  });

  describe("putAll: one conditional Put per result, a job's batch counted by one ADD and a marker each (decision 0027)", () => {
    const writes = (prefix: string, n: number, extra: Partial<ImageResult> = {}) =>
      Array.from({ length: n }, (_, i) => ({
        result: result({
          key: `${prefix}-${i}.png`,
          labels: [
            { label: `${prefix}-A`, score: 0.9 - i / 100 },
            { label: `${prefix}-B`, score: 0.06 },
          ],
          ...extra,
        }),
      }));
    const values = (settled: Array<PromiseSettledResult<string>>) =>
      settled.map((s) => (s.status === 'fulfilled' ? s.value : `rejected: ${String(s.reason)}`));

    it('writes each image with one conditional Put, its index on the item, each readable by label', async () => {
      const batch = writes('group', 10);
      sent.length = 0;
      const settled = await store.putAll(batch);
      assert.deepEqual(values(settled), Array(10).fill('written'));
      assert.deepEqual(
        sent,
        Array(10).fill('PutItemCommand'),
        'no transaction: it would cost twice the units',
      );
      for (const { result: r } of batch) assert.deepEqual(await store.getByImage('b', r.key), [r]);
      assert.equal((await hits('group-A')).length, 10);
      assert.equal((await hits('group-B')).length, 10);
    });

    it('writes the same image twice in one batch: the newer one wins', async () => {
      // The same image twice (a re-upload in the same batch): the newer one wins.
      const older = result({ key: 'twice.png', eTag: 'old', sequencer: paddedSequencer('10') });
      const newer = result({ key: 'twice.png', eTag: 'new', sequencer: paddedSequencer('11') });
      sent.length = 0;
      assert.deepEqual(values(await store.putAll([{ result: older }, { result: newer, previous: older }])), [
        'written',
        'written',
      ]);
      assert.deepEqual(await store.getByImage('b', 'twice.png'), [newer]);
    });

    it('tells a duplicate inside a group from the new results around it', async () => {
      const stored = result({ key: 'dup-1.png', labels: [{ label: 'dup-A', score: 0.9 }] });
      assert.equal(await store.put(stored), 'written');
      const batch = [0, 1, 2].map((i) => ({
        result: result({ key: `dup-${i}.png`, labels: [{ label: 'dup-A', score: 0.9 }] }),
      }));
      sent.length = 0;
      assert.deepEqual(values(await store.putAll(batch)), ['written', 'duplicate', 'written']);
      assert.deepEqual(sent, Array(3).fill('PutItemCommand'));
      assert.equal((await hits('dup-A')).length, 3);
    });

    it("counts a job's results once: one counter ADD for the batch, a marker per image, no transaction", async () => {
      const jobId = 'job-putall';
      const okWrites = writes('job', 70, { jobId });
      const failedWrite = {
        result: result({
          key: 'job-broken.png',
          jobId,
          status: 'failed',
          error: { code: 'image/decode-failed', message: 'broken' },
        }),
      };
      sent.length = 0;
      const settled = await jobStore.putAll([...okWrites, failedWrite]);
      assert.deepEqual(values(settled), Array(71).fill('written'));
      assert.equal(sent.filter((c) => c === 'TransactWriteItemsCommand').length, 0);
      assert.equal(sent.filter((c) => c === 'UpdateItemCommand').length, 1, 'one counter ADD for 71 results');
      assert.equal(sent.filter((c) => c === 'PutItemCommand').length, 142, 'a result and a marker per image');
      assert.deepEqual(await jobs.counts(jobId), { labeled: 70, failed: 1, skipped: 0, cancelled: 0 });
      // A redelivery of the same results counts nothing again and writes nothing new.
      assert.deepEqual(
        values(await jobStore.putAll([...okWrites, failedWrite])),
        Array(71).fill('duplicate'),
      );
      assert.deepEqual(await jobs.counts(jobId), { labeled: 70, failed: 1, skipped: 0, cancelled: 0 });
      // The job's own result found on a redelivery is recorded as its outcome: refused, counted already.
      assert.equal(await jobs.record(jobId, { bucket: 'b', key: 'job-broken.png' }, 'failed'), false);
      assert.deepEqual(await jobs.counts(jobId), { labeled: 70, failed: 1, skipped: 0, cancelled: 0 });
      const markers: string[] = [];
      for await (const m of jobs.markers(jobId)) markers.push(`${m.key}:${m.outcome}`);
      assert.equal(markers.length, 71);
      assert.ok(markers.includes('job-broken.png:failed'));
    });

    it('reports a result stored but not counted (injected counter fault) as transient; its redelivery counts it', async () => {
      const jobId = 'job-uncounted';
      const write = { result: result({ key: 'uncounted/a.png', jobId }) };
      clients.db.middlewareStack.add(
        (next, context) => (args) => {
          if (context.commandName === 'UpdateItemCommand') throw new Error('injected: the counter ADD fails');
          return next(args);
        },
        { step: 'initialize', name: 'failCounterAdd' },
      );
      let settled: Awaited<ReturnType<typeof jobStore.putAll>>;
      try {
        settled = await jobStore.putAll([write]);
      } finally {
        clients.db.middlewareStack.remove('failCounterAdd');
      }
      const [outcome] = settled;
      assert.equal(outcome?.status, 'rejected');
      assert.ok(outcome?.status === 'rejected' && outcome.reason instanceof LabelerError);
      assert.equal((outcome.reason as LabelerError).permanent, false, 'the message comes back');
      assert.equal((await store.getByImage('b', 'uncounted/a.png'))[0]?.jobId, jobId, 'the result is stored');
      assert.deepEqual(await jobs.counts(jobId), { labeled: 0, failed: 0, skipped: 0, cancelled: 0 });
      // The redelivery finds the job's own result and records it as the job's outcome (classify-records).
      assert.equal(await jobs.record(jobId, write.result, 'labeled'), true);
      assert.deepEqual(await jobs.counts(jobId), { labeled: 1, failed: 0, skipped: 0, cancelled: 0 });
    });

    it("keeps a finished job's counts exact when a crash left its counters over (decision 0027)", async () => {
      const { record } = await jobs.create(
        { bucket: 'b', prefix: 'crash/', target: 'lambda', mode: 'all', idempotencyKey: 'crash-over' },
        model,
      );
      const jobId = record.jobId;
      await jobs.recordPlanned(jobId, 0, 2, true);
      const a = { bucket: 'b', key: 'crash/a.png' };
      const b = { bucket: 'b', key: 'crash/b.png' };
      // A worker added a's count and stopped before its marker; the redelivery counts it again.
      await addToCounter(clients.db, 'jobs', shardPk(jobId, a), new Map([['labeled', 1]]));
      assert.equal(await jobs.record(jobId, a, 'labeled'), true);
      assert.equal((await jobs.counts(jobId)).labeled, 2, 'the counters are over');
      await jobs.checkCompletion(jobId);
      assert.equal((await jobs.get(jobId))?.status, 'running', 'b has no outcome yet: the markers say so');
      assert.equal(await jobs.record(jobId, b, 'skipped'), true);
      await jobs.checkCompletion(jobId);
      const done = await jobs.get(jobId);
      assert.equal(done?.status, 'succeeded');
      assert.deepEqual(
        { labeled: done?.labeled, failed: done?.failed, skipped: done?.skipped, cancelled: done?.cancelled },
        { labeled: 1, failed: 0, skipped: 1, cancelled: 0 },
      );
    });
  });
  describe('every key S3 accepts (up to 1,024 bytes) gets its result and index items (decision 0026)', () => {
    // The key: 1,020 bytes. `0.900000#b/` + it is 1,031 bytes, over a sort key's 1,024.
    const long = `images/${'Q'.repeat(1009)}.png`;
    const longest = `images/${'é'.repeat(506)}.png`; // 1,023 bytes of UTF-8
    const short = `images/${'Q'.repeat(1000)}.png`; // its labelSk fits: 1,020 bytes

    it('stores a long key with its labels, reads it by image and by label, and pages through it', async () => {
      assert.equal(Buffer.byteLength(long), 1020);
      for (const [key, score] of [
        [long, 0.9],
        [longest, 0.8],
        [short, 0.7],
      ] as const) {
        assert.equal(
          await store.put(result({ key, labels: [{ label: 'Long', score }] })),
          'written',
          `${Buffer.byteLength(key)}-byte key`,
        );
        const [stored] = await store.getByImage('b', key);
        assert.equal(stored?.key, key);
        assert.deepEqual(stored?.labels, [{ label: 'Long', score }]);
        // A redelivery is still a duplicate: the hashed index key is the same each time.
        assert.equal(await store.put(result({ key, labels: [{ label: 'Long', score }] })), 'duplicate');
      }
      const keys: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.queryByLabel({
          model,
          label: 'Long',
          minScore: 0.5,
          limit: 1,
          ...(cursor ? { cursor } : {}),
        });
        keys.push(...page.items.map((h) => h.key));
        cursor = page.cursor;
      } while (cursor);
      assert.deepEqual(keys, [long, longest, short], 'each once, best first, each its own key');
    });

    it('keeps the labelSk of every key that fits, so results written before stay readable', () => {
      assert.equal(labelSk(0.7, 'b', short), `0.700000#b/${short}`);
      assert.equal(labelSk(0.5, 'b', 'images/a.png'), '0.500000#b/images/a.png');
      assert.match(labelSk(0.9, 'b', long), /^0\.900000##sha256\/[0-9a-f]{64}$/);
      assert.equal(labelSk(0.9, 'b', long), labelSk(0.9, 'b', long), 'deterministic');
      assert.notEqual(labelSk(0.9, 'b', long), labelSk(0.9, 'b', longest));
    });

    it('calls a ValidationException permanent (aws/invalid-request), never transient', async () => {
      // Over DynamoDB's 2,048-byte partition key: refused by DynamoDB itself.
      const error = await store.put(result({ key: 'k'.repeat(2100), labels: [] })).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error instanceof LabelerError, String(error));
      assert.equal(error.code, 'aws/invalid-request', error.message);
      assert.equal(error.permanent, true);
      assert.ok(!(error instanceof TransientError));
    });
  });
});
