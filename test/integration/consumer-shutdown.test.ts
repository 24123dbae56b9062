import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from '@aws-sdk/client-sqs';
import { buildApp } from 'fauxqs';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { SqsBatchConsumer } from '../../shared/aws/sqs-batch-consumer.ts';
import { waitFor } from '../helpers/wait.ts';

// The real consumer against fauxqs (SQS on 127.0.0.1). The queue's visibility timeout is
// far longer than any wait below, so a message is receivable again only if the consumer
// released it.
let app: ReturnType<typeof buildApp>;
let clients: AwsClients;

before(async () => {
  app = buildApp({ logger: false });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  clients = createAwsClients({ region: 'us-east-1', endpoints: { sqs: address }, local: true });
});
after(async () => {
  clients?.sqs.destroy();
  await app?.close();
});

async function queueWith(name: string, bodies: readonly string[]): Promise<string> {
  const created = await clients.sqs.send(
    new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '900' } }),
  );
  const url = created.QueueUrl ?? '';
  await clients.sqs.send(
    new SendMessageBatchCommand({
      QueueUrl: url,
      Entries: bodies.map((body, i) => ({ Id: String(i), MessageBody: body })),
    }),
  );
  return url;
}

async function inFlight(url: string): Promise<number> {
  const r = await clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return Number(r.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
}

it('on stop, releases messages gathered into a batch that has not started (visibility 0)', async () => {
  // Arrange: 3 messages; the consumer waits for a batch of 10 within a window it never reaches.
  const url = await queueWith('shutdown-release', ['a', 'b', 'c']);
  let invocations = 0;
  const consumer = new SqsBatchConsumer({
    sqs: clients.sqs,
    queueUrl: url,
    queueArn: 'arn:aws:sqs:us-east-1:000000000000:shutdown-release',
    region: 'us-east-1',
    handler: async () => {
      invocations++;
      return { batchItemFailures: [] };
    },
    batchSize: 10,
    maxBatchingWindowMs: 10 * 60_000,
    functionTimeoutMs: 60_000,
  });
  consumer.start();
  await waitFor('the consumer holds all 3 messages', async () =>
    (await inFlight(url)) === 3 ? true : undefined,
  );

  // Act
  await consumer.stop();

  // Assert: never invoked, and all 3 are receivable again long before the 900 s timeout.
  assert.equal(invocations, 0);
  assert.equal(await inFlight(url), 0);
  const again: Message[] = [];
  await waitFor('3 messages receivable again', async () => {
    const r = await clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 10,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
    );
    again.push(...(r.Messages ?? []));
    return again.length >= 3 ? true : undefined;
  });
  assert.deepEqual(again.map((m) => m.Body).sort(), ['a', 'b', 'c']);
});

it('on stop, still finishes and deletes a batch already running', async () => {
  const url = await queueWith('shutdown-finish', ['x', 'y']);
  let release: () => void = () => {};
  const running = new Promise<void>((resolve) => {
    release = resolve;
  });
  let started = false;
  const consumer = new SqsBatchConsumer({
    sqs: clients.sqs,
    queueUrl: url,
    queueArn: 'arn:aws:sqs:us-east-1:000000000000:shutdown-finish',
    region: 'us-east-1',
    handler: async () => {
      started = true;
      await running;
      return { batchItemFailures: [] };
    },
    batchSize: 2,
    maxBatchingWindowMs: 10 * 60_000,
    functionTimeoutMs: 60_000,
  });
  consumer.start();
  await waitFor('the batch started', async () => (started ? true : undefined));

  const stopped = consumer.stop();
  release();
  await stopped;

  assert.equal(await inFlight(url), 0, 'nothing left in flight');
  const r = await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }));
  assert.equal(r.Messages?.length ?? 0, 0, 'the finished batch was deleted, not released');
});
