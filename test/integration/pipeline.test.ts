import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import {
  GetQueueAttributesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import type { AwsClients } from '../../shared/aws/clients.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import type { SqsHandler } from '../../shared/aws/sqs-batch-consumer.ts';
import type { BatchReport } from '../../shared/labeling/classify-records.ts';
import { loadModelBundle } from '../../shared/model/manifest.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { CLASSIFY, UPLOAD_FILTER } from '../../shared/settings.ts';
import { s3EventBody } from '../helpers/events.ts';
import { solidImage } from '../helpers/images.ts';
import { waitFor } from '../helpers/wait.ts';

const SAMPLES = join(DEFAULT_MODEL_DIR, 'samples');
/**
 * Only the tests whose subject is redelivery shorten the visibility timeout, and their
 * assertions hold however slow the machine is: a slow batch may be delivered again, so
 * they count results and model runs, never deliveries. maxReceiveCount is high enough
 * that a valid message never reaches the DLQ on a loaded machine.
 */
const REDELIVERY = { visibilitySeconds: 5, maxReceiveCount: 10 } as const;
/** Waits that include a redelivery after REDELIVERY.visibilitySeconds, on a loaded machine. */
const REDELIVERY_WAIT_MS = 120_000;

/** Per-test hooks into the stack's handler and its DynamoDB client. */
let wrap: (handler: SqsHandler) => SqsHandler = (h) => h;
let failWrite: ((input: Record<string, unknown>) => boolean) | undefined;

describe('the pipeline on one machine (fauxqs + DynamoDB Local + the real handler)', () => {
  let stack: LocalStack;
  let store: DynamoResultsStore;
  let reports: BatchReport[] = [];
  let model: { id: string; version: string };
  let sample: Buffer;

  before(async () => {
    const bundle = await loadModelBundle(DEFAULT_MODEL_DIR);
    model = { id: bundle.manifest.id, version: bundle.manifest.version };
    sample = await readFile(join(SAMPLES, 'test-00000.png'));
    stack = await startLocalStack({
      // Fault injection into the handler's own clients needs the handler in this process.
      isolation: 'in-process',
      maxBatchingWindowMs: 200,
      log: { info: () => {}, warn: () => {}, error: () => {} },
      wrapHandler: (handler) => (event) => wrap(handler)(event),
      configureHandlerClients: (clients: AwsClients) => {
        clients.db.middlewareStack.add(
          (next) => async (args) => {
            if (failWrite?.(args.input as Record<string, unknown>)) {
              throw Object.assign(new Error('Rate of requests exceeds the allowed throughput.'), {
                name: 'ThrottlingException',
                $metadata: { httpStatusCode: 400 },
              });
            }
            return next(args);
          },
          { step: 'initialize', name: 'injectThrottling' },
        );
      },
    });
    store = new DynamoResultsStore(stack.clients.db, stack.names.resultsTable);
    stack.onReport((r) => reports.push(r));
  });

  after(async () => {
    await stack?.stop();
  });

  beforeEach(async () => {
    wrap = (h) => h;
    failWrite = undefined;
    await stack.notifier.flush();
    // Nothing a previous test left in flight may count in this one's reports.
    await waitFor(
      'the queue to drain before the test',
      async () => ((await queueDepth(stack.queues.incoming.url)) === 0 ? true : undefined),
      REDELIVERY_WAIT_MS,
    );
    await redeliverAfter(CLASSIFY.visibilityTimeoutSeconds, CLASSIFY.maxReceiveCount);
    reports = [];
  });

  /** Sets the incoming queue's visibility timeout and redrive policy for the messages received from now on. */
  const redeliverAfter = (visibilitySeconds: number, maxReceiveCount: number) =>
    stack.clients.sqs.send(
      new SetQueueAttributesCommand({
        QueueUrl: stack.queues.incoming.url,
        Attributes: {
          VisibilityTimeout: String(visibilitySeconds),
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: stack.queues.incomingDlq.arn,
            maxReceiveCount,
          }),
        },
      }),
    );

  const put = async (key: string, body: Uint8Array | string) => {
    const response = await stack.clients.s3.send(
      new PutObjectCommand({ Bucket: stack.names.imagesBucket, Key: key, Body: body }),
    );
    return (response.ETag ?? '').replace(/"/g, '');
  };
  const resultOf = async (key: string) => (await store.getByImage(stack.names.imagesBucket, key))[0];
  const waitForResult = (key: string, eTag?: string) =>
    waitFor(`a result for ${key}`, async () => {
      const r = await resultOf(key);
      return r && (!eTag || r.eTag === eTag) ? r : undefined;
    });
  const queueDepth = async (url: string, which: 'all' | 'visible' = 'all') => {
    const a = await stack.clients.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    const visible = Number(a.Attributes?.ApproximateNumberOfMessages);
    return which === 'visible'
      ? visible
      : visible + Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible);
  };
  const sum = (field: keyof BatchReport['counts']) => reports.reduce((n, r) => n + r.counts[field], 0);

  it('gives every uploaded file exactly one result and one export line', async () => {
    const names = ['test-00001.png', 'test-00002.png', 'test-00003.png', 'test-00004.png', 'test-00005.png'];
    const keys = await Promise.all(
      names.map(async (name) => {
        const key = `${UPLOAD_FILTER.prefix}every/${name}`;
        return { key, eTag: await put(key, await readFile(join(SAMPLES, name))) };
      }),
    );
    for (const { key, eTag } of keys) {
      const r = await waitForResult(key, eTag);
      assert.equal(r.status, 'ok');
      assert.equal(r.labels.length, 5);
      assert.equal(r.model.id, model.id);
    }
    await waitFor('the queue to drain', async () =>
      (await queueDepth(stack.queues.incoming.url)) === 0 ? true : undefined,
    );
    for (const { key } of keys)
      assert.equal((await store.getByImage(stack.names.imagesBucket, key)).length, 1);
    assert.equal(sum('labeled'), names.length, 'one result written per file');
    assert.equal(sum('inferred'), names.length, 'the model ran once per file');

    const listed = await stack.clients.s3.send(
      new ListObjectsV2Command({
        Bucket: stack.names.resultsBucket,
        Prefix: `results/model=${model.id}/date=`,
      }),
    );
    const lines: Array<{ key: string }> = [];
    for (const object of listed.Contents ?? []) {
      assert.match(object.Key ?? '', /^results\/model=[^/]+\/date=\d{4}-\d{2}-\d{2}\/[0-9a-f]{32}\.jsonl$/);
      const body = await stack.clients.s3.send(
        new GetObjectCommand({ Bucket: stack.names.resultsBucket, Key: object.Key }),
      );
      for (const line of (await body.Body?.transformToString())?.trim().split('\n') ?? [])
        lines.push(JSON.parse(line));
    }
    const exported = lines.filter((l) => l.key.startsWith(`${UPLOAD_FILTER.prefix}every/`)).map((l) => l.key);
    assert.deepEqual(exported.sort(), keys.map((k) => k.key).sort());
  });

  it('runs the model once when the same S3 event is delivered twice', async () => {
    const key = `${UPLOAD_FILTER.prefix}twice/same.png`;
    const eTag = await put(key, sample);
    await waitForResult(key, eTag);
    const first = await resultOf(key);
    // The result is written before its invocation reports: wait for the message's deletion,
    // which comes after the report, so the upload's own run is not counted below.
    await waitFor('the upload acknowledged', async () =>
      (await queueDepth(stack.queues.incoming.url)) === 0 ? true : undefined,
    );
    reports = [];
    const body = s3EventBody({ bucket: stack.names.imagesBucket, key, eTag, size: sample.length });
    await stack.clients.sqs.send(
      new SendMessageCommand({ QueueUrl: stack.queues.incoming.url, MessageBody: body }),
    );
    await stack.clients.sqs.send(
      new SendMessageCommand({ QueueUrl: stack.queues.incoming.url, MessageBody: body }),
    );
    await waitFor('both deliveries', () => (sum('duplicates') >= 2 ? true : undefined));
    assert.equal(sum('inferred'), 0, 'the model did not run again');
    assert.equal(sum('labeled'), 0);
    assert.deepEqual(await store.getByImage(stack.names.imagesBucket, key), [first]);
  });

  it('recovers from a worker that dies mid-batch: messages reappear, no loss, no second result', async () => {
    await redeliverAfter(REDELIVERY.visibilitySeconds, REDELIVERY.maxReceiveCount);
    let crashes = 0;
    // The handler finishes its writes, then the worker dies before the messages are acknowledged.
    wrap = (handler) => async (event) => {
      const response = await handler(event);
      if (crashes++ === 0) throw new Error('worker killed');
      return response;
    };
    const keys = ['a', 'b', 'c'].map((n) => `${UPLOAD_FILTER.prefix}crash/${n}.png`);
    await stack.clients.s3.send(
      new PutObjectCommand({ Bucket: stack.names.imagesBucket, Key: keys[0], Body: sample }),
    );
    await Promise.all(keys.slice(1).map((k) => put(k, sample)));
    await waitFor(
      'the redelivery after the visibility timeout',
      () => (crashes >= 2 ? true : undefined),
      REDELIVERY_WAIT_MS,
    );
    await waitFor(
      'the queue to drain',
      async () => ((await queueDepth(stack.queues.incoming.url)) === 0 ? true : undefined),
      REDELIVERY_WAIT_MS,
    );
    for (const key of keys) assert.equal((await store.getByImage(stack.names.imagesBucket, key)).length, 1);
    assert.equal(sum('labeled'), keys.length, 'each labeled once');
    assert.ok(sum('duplicates') >= 1, 'the redelivered messages were recognised as done');
    assert.equal(await queueDepth(stack.queues.incomingDlq.url), 0);
  });

  it('keeps keys with spaces, plus signs, unicode and nested prefixes intact', async () => {
    const keys = [
      `${UPLOAD_FILTER.prefix}with space/a b.png`,
      `${UPLOAD_FILTER.prefix}plus+sign/1+1=2.png`,
      `${UPLOAD_FILTER.prefix}ünïcødé/日本語 写真.png`,
      `${UPLOAD_FILTER.prefix}deep/er/and/deeper/%41 percent.png`,
    ];
    const eTags = await Promise.all(keys.map((k) => put(k, sample)));
    for (const [i, key] of keys.entries()) {
      const r = await waitForResult(key, eTags[i]);
      assert.equal(r.key, key);
      assert.equal(r.status, 'ok');
    }
  });

  it('records a bad image as failed, labels the others, and retries nothing', async () => {
    const good = `${UPLOAD_FILTER.prefix}mixed/good.png`;
    const bad = `${UPLOAD_FILTER.prefix}mixed/bad.jpg`;
    const photo = `${UPLOAD_FILTER.prefix}mixed/photo.jpg`;
    await Promise.all([
      put(good, sample),
      put(bad, sample.subarray(0, 50)),
      put(photo, await solidImage(640, 480, '#336699').jpeg().toBuffer()),
    ]);
    const failed = await waitForResult(bad);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error?.code, 'image/decode-failed');
    assert.equal(failed.labels.length, 0);
    assert.equal((await waitForResult(good)).status, 'ok');
    assert.equal((await waitForResult(photo)).status, 'ok');
    await waitFor('the queue to drain', async () =>
      (await queueDepth(stack.queues.incoming.url)) === 0 ? true : undefined,
    );
    assert.equal(sum('retried'), 0);
    assert.equal(sum('failed'), 1);
  });

  it('retries only the record whose DynamoDB write was throttled (injected: DynamoDB Local cannot throttle)', async () => {
    await redeliverAfter(REDELIVERY.visibilitySeconds, REDELIVERY.maxReceiveCount);
    const victim = 'throttle/victim.png';
    const others = ['throttle/ok-1.png', 'throttle/ok-2.png'];
    let throttled = 0;
    // Every write naming the victim fails during the first delivery: its own conditional Put
    // (decision 0027; a grouped transaction, for a job's results).
    failWrite = (input) => {
      const hit =
        JSON.stringify(input.TransactItems ?? input.Item ?? '').includes(victim) && events.length === 1;
      if (hit) throttled++;
      return hit;
    };
    const events: SQSEvent[] = [];
    wrap = (handler) => async (event) => {
      events.push(event);
      return handler(event);
    };
    // Outside the upload prefix, so no notification: one SendMessageBatch queues all three at once,
    // and the mapping's next receive takes them as one batch.
    const entries = await Promise.all(
      [victim, ...others].map(async (key, i) => ({
        Id: String(i),
        MessageBody: s3EventBody({
          bucket: stack.names.imagesBucket,
          key,
          eTag: await put(key, sample),
          size: sample.length,
        }),
      })),
    );
    await stack.clients.sqs.send(
      new SendMessageBatchCommand({ QueueUrl: stack.queues.incoming.url, Entries: entries }),
    );
    for (const key of others) await waitForResult(key);
    const first = events[0];
    assert.equal(first?.Records.length, 3, 'one batch holds all three');
    const victimMessage = first.Records.find((r) => r.body.includes('victim.png'));
    assert.ok(victimMessage);
    // The report comes after the batch's writes and export, not with them.
    const throttledPass = await waitFor('the batch that retried to report', () =>
      reports.find((r) => r.counts.retried > 0),
    );
    assert.equal(throttledPass.counts.retried, 1);
    assert.deepEqual(throttledPass.failedMessageIds, [victimMessage.messageId], 'only the victim goes back');
    assert.equal(
      throttledPass.counts.labeled + throttledPass.counts.duplicates,
      2,
      'the others in that batch were done, not retried',
    );
    const later = await waitForResult(victim);
    assert.equal(later.status, 'ok');
    assert.ok(throttled >= 1);
    for (const key of [victim, ...others])
      assert.equal((await store.getByImage(stack.names.imagesBucket, key)).length, 1);
    await waitFor(
      'the queue to drain',
      async () => ((await queueDepth(stack.queues.incoming.url)) === 0 ? true : undefined),
      REDELIVERY_WAIT_MS,
    );
    assert.equal(await queueDepth(stack.queues.incomingDlq.url), 0);
  });

  it('moves a poison message to the dead-letter queue after maxReceiveCount', async () => {
    // Counting deliveries is right here, whatever the speed: every receive counts towards maxReceiveCount.
    await redeliverAfter(1, 2);
    await stack.clients.sqs.send(new PurgeQueueCommand({ QueueUrl: stack.queues.incomingDlq.url }));
    await stack.clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.queues.incoming.url,
        MessageBody: '{"this is": "not an S3 event"}',
      }),
    );
    const parked = await waitFor(
      'the message in the DLQ',
      async () => {
        const r = await stack.clients.sqs.send(
          new ReceiveMessageCommand({ QueueUrl: stack.queues.incomingDlq.url, WaitTimeSeconds: 1 }),
        );
        return r.Messages?.[0];
      },
      REDELIVERY_WAIT_MS,
    );
    assert.equal(parked.Body, '{"this is": "not an S3 event"}');
    assert.equal(sum('invalid'), 2, 'delivered maxReceiveCount (2) times before parking');
  });
});
