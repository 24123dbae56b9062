import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { createClassifyDeps, makeClassifyHandler } from '../../shared/aws/classify-handler.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import { listPage, listPages } from '../../shared/aws/list-objects.ts';
import { createPlanPorts } from '../../shared/aws/plan-job.ts';
import { SqsBatchConsumer } from '../../shared/aws/sqs-batch-consumer.ts';
import { planStep, startJob } from '../../shared/labeling/plan-job.ts';
import { answerQuery } from '../../shared/labeling/query-api.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { UPLOAD_FILTER } from '../../shared/settings.ts';
import { solidImage } from '../helpers/images.ts';
import { waitFor } from '../helpers/wait.ts';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };
/** Long enough that a received message stays hidden for the whole test on a loaded machine. */
const HIDDEN_SECONDS = 300;

describe('local AWS glue: S3 notifications, the SQS batch consumer, plan-job, the query API', () => {
  let stack: LocalStack;
  let testQueue: string;

  before(async () => {
    stack = await startLocalStack({ worker: false });
    const created = await stack.clients.sqs.send(
      new CreateQueueCommand({
        QueueName: 'consumer-test',
        Attributes: { VisibilityTimeout: String(HIDDEN_SECONDS) },
      }),
    );
    testQueue = created.QueueUrl ?? '';
  });
  after(async () => {
    await stack?.stop();
  });
  beforeEach(async () => {
    await stack.notifier.flush();
    await stack.clients.sqs.send(new PurgeQueueCommand({ QueueUrl: stack.queues.incoming.url }));
    await stack.clients.sqs.send(new PurgeQueueCommand({ QueueUrl: testQueue }));
    await setVisibility(HIDDEN_SECONDS);
  });

  const setVisibility = (seconds: number) =>
    stack.clients.sqs.send(
      new SetQueueAttributesCommand({
        QueueUrl: testQueue,
        Attributes: { VisibilityTimeout: String(seconds) },
      }),
    );
  const depth = async (queueUrl: string) => {
    const a = await stack.clients.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(a.Attributes?.ApproximateNumberOfMessages) +
      Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible)
    );
  };

  const receiveAll = async (queueUrl: string, count: number): Promise<Message[]> => {
    const got: Message[] = [];
    await waitFor(`${count} messages`, async () => {
      const r = await stack.clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 30 }),
      );
      got.push(...(r.Messages ?? []));
      return got.length >= count ? true : undefined;
    });
    return got;
  };
  const s3Record = (m: Message) => JSON.parse(m.Body ?? '{}').Records[0];

  it('sends the exact S3 event for a PutObject: form-encoded key, unquoted eTag, size, sequencer', async () => {
    const body = Buffer.from('hello bytes');
    const key = `${UPLOAD_FILTER.prefix}a b+c/ü.png`;
    await stack.clients.s3.send(
      new PutObjectCommand({ Bucket: stack.names.imagesBucket, Key: key, Body: body }),
    );
    const [message] = await receiveAll(stack.queues.incoming.url, 1);
    const record = s3Record(message as Message);
    assert.equal(record.eventVersion, '2.1');
    assert.equal(record.eventSource, 'aws:s3');
    assert.equal(record.eventName, 'ObjectCreated:Put');
    assert.equal(record.s3.bucket.name, stack.names.imagesBucket);
    assert.equal(record.s3.object.key, 'images/a+b%2Bc/%C3%BC.png');
    assert.equal(record.s3.object.eTag, createHash('md5').update(body).digest('hex'));
    assert.equal(record.s3.object.size, body.length);
    assert.match(record.s3.object.sequencer, /^[0-9A-F]{16,}$/);
  });

  it('sends ObjectCreated:Copy and :CompleteMultipartUpload, with growing sequencers, and filters by prefix', async () => {
    const bucket = stack.names.imagesBucket;
    await stack.clients.s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'elsewhere/ignored.png', Body: 'x' }),
    );
    await stack.clients.s3.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: `${UPLOAD_FILTER.prefix}copy.png`,
        CopySource: `${bucket}/elsewhere/ignored.png`,
      }),
    );
    const upload = await stack.clients.s3.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: `${UPLOAD_FILTER.prefix}multi.png` }),
    );
    const part = await stack.clients.s3.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: `${UPLOAD_FILTER.prefix}multi.png`,
        UploadId: upload.UploadId,
        PartNumber: 1,
        Body: Buffer.alloc(1024, 7),
      }),
    );
    await stack.clients.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: `${UPLOAD_FILTER.prefix}multi.png`,
        UploadId: upload.UploadId,
        MultipartUpload: { Parts: [{ ETag: part.ETag, PartNumber: 1 }] },
      }),
    );
    await stack.notifier.flush();
    const messages = await receiveAll(stack.queues.incoming.url, 2);
    const records = messages
      .map(s3Record)
      .sort((a, b) => (a.s3.object.sequencer < b.s3.object.sequencer ? -1 : 1));
    assert.deepEqual(
      records.map((r) => [r.eventName, r.s3.object.key]),
      [
        ['ObjectCreated:Copy', 'images/copy.png'],
        ['ObjectCreated:CompleteMultipartUpload', 'images/multi.png'],
      ],
    );
    assert.match(records[1].s3.object.eTag, /^[0-9a-f]{32}-1$/);
    const more = await stack.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: stack.queues.incoming.url }),
    );
    assert.equal(more.Messages, undefined, 'nothing for the key outside the prefix');
  });

  it('sends an s3:TestEvent when a notification is configured', async () => {
    await stack.notifier.configure({
      id: 't',
      bucket: 'other',
      queueUrl: testQueue,
      prefix: '',
      suffixes: [],
    });
    const [message] = await receiveAll(testQueue, 1);
    assert.deepEqual(
      { ...JSON.parse(message?.Body ?? '{}'), Time: 'x', RequestId: 'x', HostId: 'x' },
      {
        Service: 'Amazon S3',
        Event: 's3:TestEvent',
        Time: 'x',
        Bucket: 'other',
        RequestId: 'x',
        HostId: 'x',
      },
    );
  });

  describe('the SQS batch consumer (event source mapping semantics)', () => {
    const send = async (n: number) => {
      await stack.clients.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: testQueue,
          Entries: Array.from({ length: n }, (_, i) => ({ Id: String(i), MessageBody: `m${i}` })),
        }),
      );
    };
    const consume = async (
      handler: (event: SQSEvent) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>,
    ) => {
      const events: SQSEvent[] = [];
      // The consumer's own client, recording the receipt handles it deletes.
      const sqs = new SQSClient({
        region: stack.region,
        endpoint: stack.endpoints.sqs,
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      });
      const deleted = new Set<string>();
      sqs.middlewareStack.add(
        (next) => async (args) => {
          const input = args.input as { Entries?: Array<{ ReceiptHandle?: string }> };
          const output = await next(args);
          for (const entry of input.Entries ?? []) if (entry.ReceiptHandle) deleted.add(entry.ReceiptHandle);
          return output;
        },
        { step: 'initialize', name: 'recordDeletes' },
      );
      const consumer = new SqsBatchConsumer({
        sqs,
        queueUrl: testQueue,
        queueArn: 'arn:aws:sqs:us-east-1:000000000000:consumer-test',
        region: 'us-east-1',
        batchSize: 3,
        maxBatchingWindowMs: 300,
        functionTimeoutMs: 5000,
        handler: async (event) => {
          events.push(event);
          return handler(event);
        },
      });
      consumer.start();
      const records = () => events.flatMap((e) => e.Records);
      return {
        events,
        records,
        /** Whether the consumer deleted this delivery (acknowledged it). */
        acknowledged: (r: SQSRecord) => deleted.has(r.receiptHandle),
        stop: async () => {
          await consumer.stop();
          sqs.destroy();
        },
      };
    };

    it('invokes with the Lambda SQS record shape, at most batchSize records, and deletes what succeeded', async () => {
      await send(5);
      const run = await consume(async () => ({ batchItemFailures: [] }));
      await waitFor('5 records', () => (run.events.flatMap((e) => e.Records).length >= 5 ? true : undefined));
      await run.stop();
      assert.ok(run.events.every((e) => e.Records.length <= 3));
      const record = run.events[0]?.Records[0];
      assert.equal(record?.eventSource, 'aws:sqs');
      assert.equal(record?.eventSourceARN, 'arn:aws:sqs:us-east-1:000000000000:consumer-test');
      assert.equal(record?.attributes.ApproximateReceiveCount, '1');
      assert.deepEqual(
        run
          .records()
          .filter(run.acknowledged)
          .map((r) => r.body)
          .sort(),
        ['m0', 'm1', 'm2', 'm3', 'm4'],
      );
      assert.equal(await depth(testQueue), 0, 'every message deleted, none merely hidden');
    });

    // Redelivery is the subject here, so the timeout is short; a slow machine may redeliver more,
    // so the assertions are about what was acknowledged, not how often anything was delivered.
    it('redelivers only the reported item failures, after the visibility timeout', async () => {
      await setVisibility(1);
      await send(3);
      // "First" is this consumer's first sight of a message: a long poll abandoned by an earlier
      // consumer's stop may already have received it once (fauxqs keeps serving it).
      const seen = new Set<string>();
      const run = await consume(async (event) => {
        const failures = event.Records.filter((r) => r.body === 'm1' && !seen.has(r.body));
        for (const r of event.Records) seen.add(r.body);
        return { batchItemFailures: failures.map((r) => ({ itemIdentifier: r.messageId })) };
      });
      const m1 = () => run.records().filter((r) => r.body === 'm1');
      await waitFor('m1 again', () => (m1().length >= 2 ? true : undefined));
      await waitFor('the queue to drain', async () => ((await depth(testQueue)) === 0 ? true : undefined));
      await run.stop();
      const firsts = ['m0', 'm1', 'm2'].map((body) => run.records().find((r) => r.body === body));
      assert.deepEqual(
        firsts.map((r) => [r?.body, r && run.acknowledged(r)]),
        [
          ['m0', true],
          ['m1', false],
          ['m2', true],
        ],
      );
      assert.ok(m1().slice(1).some(run.acknowledged), 'm1 acknowledged on a later delivery');
    });

    it('redelivers the whole batch when the response names a message outside the batch', async () => {
      await setVisibility(1);
      await send(2);
      let calls = 0;
      const run = await consume(async () =>
        calls++ === 0 ? { batchItemFailures: [{ itemIdentifier: 'nope' }] } : { batchItemFailures: [] },
      );
      await waitFor('the queue to drain', async () => ((await depth(testQueue)) === 0 ? true : undefined));
      await run.stop();
      const [first] = run.events;
      assert.ok(first && first.Records.length > 0);
      assert.ok(!first.Records.some(run.acknowledged), 'nothing of the failed invocation was deleted');
      for (const body of ['m0', 'm1'])
        assert.ok(
          run.records().some((r) => r.body === body && run.acknowledged(r)),
          `${body} acknowledged later`,
        );
    });
  });

  it('plans a job over a prefix, and a bulk consumer labels it with the job id (the GPU worker path, on CPU)', async () => {
    const bucket = stack.names.imagesBucket;
    const jpeg = await solidImage(64, 48, '#884422').jpeg().toBuffer();
    for (let i = 0; i < 23; i++) {
      await stack.clients.s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: `datasets/d1/${i}.jpg`, Body: jpeg }),
      );
    }
    await stack.clients.s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'datasets/d2/other.jpg', Body: jpeg }),
    );
    const ports = createPlanPorts(
      stack.clients,
      {
        jobsTable: stack.names.jobsTable,
        resultsTable: stack.names.resultsTable,
        planQueueUrl: stack.queues.plan.url,
        models: stack.models,
      },
      stack.region,
    );
    const { jobId } = await startJob({ bucket, prefix: 'datasets/d1/', target: 'gpu', mode: 'all' }, ports);
    const [step] = await receiveAll(stack.queues.plan.url, 1);
    const planned = await planStep(step?.Body ?? '', ports, { pageSize: 1000, stepBudgetMs: 60_000 });
    assert.deepEqual(planned, { kind: 'planned', jobId, page: 0, objects: 23, done: true });
    const job = await ports.store.get(jobId);
    assert.equal(job?.total, 23);
    assert.equal(job?.status, 'running');

    const deps = await createClassifyDeps(
      {
        region: stack.region,
        resultsTable: stack.names.resultsTable,
        resultsBucket: stack.names.resultsBucket,
        modelDir: DEFAULT_MODEL_DIR,
        executionProviders: ['cuda', 'cpu'],
        intraOpThreads: 1,
        topK: 3,
        batchSize: 32,
        concurrency: 2,
        maxBytes: 1 << 20,
        maxPixels: 1 << 20,
      },
      stack.clients,
      quiet,
    );
    const consumer = new SqsBatchConsumer({
      sqs: stack.clients.sqs,
      queueUrl: stack.queues.bulk.url,
      queueArn: stack.queues.bulk.arn,
      region: stack.region,
      handler: makeClassifyHandler(deps),
      batchSize: 10,
      maxBatchingWindowMs: 200,
      functionTimeoutMs: 30_000,
    });
    consumer.start();
    const store = new DynamoResultsStore(stack.clients.db, stack.names.resultsTable);
    try {
      for (let i = 0; i < 23; i++) {
        const r = await waitFor(
          `result ${i}`,
          async () => (await store.getByImage(bucket, `datasets/d1/${i}.jpg`))[0],
        );
        assert.equal(r.jobId, jobId);
        assert.equal(r.labels.length, 3);
      }
      assert.deepEqual(await store.getByImage(bucket, 'datasets/d2/other.jpg'), []);
    } finally {
      await consumer.stop();
      await deps.labeler.classifier.release();
    }

    // The query API reads the same results: by image, and by label with a score floor.
    const model = {
      id: deps.labeler.classifier.manifest.id,
      version: deps.labeler.classifier.manifest.version,
    };
    const byImage = await answerQuery(
      { method: 'GET', path: '/images/datasets%2Fd1%2F0.jpg', query: {} },
      store,
      { bucket, model },
    );
    assert.equal(byImage.status, 200);
    const top = ((byImage.body as { items: Array<{ labels: Array<{ label: string; score: number }> }> })
      .items[0]?.labels ?? [])[0];
    assert.ok(top);
    const byLabel = await answerQuery(
      {
        method: 'GET',
        path: `/labels/${encodeURIComponent(top.label)}`,
        query: { minScore: String(top.score - 1e-6), limit: '10' },
      },
      store,
      { bucket, model },
    );
    assert.equal(byLabel.status, 200);
    const page = byLabel.body as { items: Array<{ key: string; score: number }>; cursor?: string };
    assert.equal(page.items.length, 10);
    assert.ok(page.cursor, 'more than one page');
    assert.ok(page.items.every((hit) => hit.score >= top.score - 1e-6));
    const bad = await answerQuery({ method: 'GET', path: '/labels/Bag', query: { minScore: '2' } }, store, {
      bucket,
      model,
    });
    assert.equal(bad.status, 400);
    assert.equal((bad.body as { error: { code: string } }).error.code, 'query/bad-request');
    const missing = await answerQuery({ method: 'GET', path: '/images/nope.png', query: {} }, store, {
      bucket,
      model,
    });
    assert.equal(missing.status, 404);
  });

  it('lists a prefix page by page, with its folders, and goes on from a token (shared/aws/list-objects)', async () => {
    const bucket = stack.names.imagesBucket;
    // Outside the upload prefix: nothing is notified or labeled.
    const keys = ['lister/a/1.png', 'lister/a/2.png', 'lister/b/3.png', 'lister/c.png', 'lister/d.png'];
    for (const key of keys) {
      await stack.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }));
    }
    const pages = [];
    for await (const page of listPages(stack.clients.s3, { bucket, prefix: 'lister/', maxKeys: 2 }))
      pages.push(page);
    assert.deepEqual(
      pages.flatMap((p) => p.objects.map((o) => o.key)),
      keys,
    );
    assert.ok(pages.length >= 3, `${pages.length} pages of at most 2`);
    assert.ok(pages.slice(0, -1).every((p) => p.next) && !pages.at(-1)?.next);
    const first = pages[0]?.objects[0];
    assert.equal(first?.size, keys[0]?.length);
    assert.match(first?.eTag ?? '', /^[0-9a-f]{32}$/, 'the ETag without its quotes');

    const resumed = await listPage(stack.clients.s3, {
      bucket,
      prefix: 'lister/',
      maxKeys: 2,
      token: pages[0]?.next as string,
    });
    assert.deepEqual(resumed.objects, pages[1]?.objects);

    const folders = await listPage(stack.clients.s3, { bucket, prefix: 'lister/', delimiter: '/' });
    assert.deepEqual(folders.prefixes, ['lister/a/', 'lister/b/']);
    assert.deepEqual(
      folders.objects.map((o) => o.key),
      ['lister/c.png', 'lister/d.png'],
    );
  });

  it('lists every key exactly as stored: CR, LF, tab, %, +, space, unicode, markup (EncodingType=url)', async () => {
    const bucket = stack.names.imagesBucket;
    // In a plain XML listing a CR reads back as LF: the job then looks for a key that does not exist.
    const keys = [
      'hostile/cr\rx.png',
      'hostile/crlf\r\ny.png',
      'hostile/lf\nx.png',
      'hostile/pct%41%zz.png',
      'hostile/plus+ space.png',
      'hostile/tab\tx.png',
      'hostile/<b>&amp;"\'.png',
      'hostile/ünï/猫🐱.png',
    ].sort();
    for (const key of keys) {
      await stack.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }));
    }
    const listed = await listPage(stack.clients.s3, { bucket, prefix: 'hostile/' });
    assert.deepEqual(
      listed.objects.map((o) => o.key),
      keys,
    );
    const paged = [];
    for await (const page of listPages(stack.clients.s3, { bucket, prefix: 'hostile/', maxKeys: 3 }))
      paged.push(...page.objects.map((o) => o.key));
    assert.deepEqual(paged, keys, 'the same keys page by page: the continuation token survives too');
    const folders = await listPage(stack.clients.s3, { bucket, prefix: 'hostile/', delimiter: '/' });
    assert.deepEqual(folders.prefixes, ['hostile/ünï/']);
    const underCr = await listPage(stack.clients.s3, { bucket, prefix: 'hostile/cr\r' });
    assert.deepEqual(
      underCr.objects.map((o) => o.key),
      ['hostile/cr\rx.png'],
    );
  });
});
