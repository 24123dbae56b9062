import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

/** Lambda's context, as much of it as handlers read: the time left before the timeout. */
export interface ConsumerContext {
  getRemainingTimeInMillis(): number;
}

export type SqsHandler = (
  event: SQSEvent,
  context?: ConsumerContext,
) => Promise<SQSBatchResponse | undefined>;

export interface SqsBatchConsumerOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly region: string;
  readonly handler: SqsHandler;
  readonly batchSize: number;
  readonly maxBatchingWindowMs: number;
  /** An invocation running longer than this fails as a whole, as a Lambda timeout does. */
  readonly functionTimeoutMs: number;
  /** Concurrent invocations (Lambda's maximum concurrency for this source). @default 1 */
  readonly concurrency?: number;
  readonly onError?: (error: unknown) => void;
}

/**
 * Lambda's SQS event source mapping, as a library: long-polls the queue, gathers up to
 * `batchSize` messages within the batching window, invokes the handler with the real
 * SQS event shape, and with ReportBatchItemFailures semantics deletes every message
 * except the reported ones. A thrown error, a timeout or an invalid response retries the
 * whole batch. Retried messages reappear after the visibility timeout; the queue's own
 * redrive policy moves them to the dead-letter queue after maxReceiveCount.
 *
 * The local stack uses it in place of AWS's mapping; the GPU worker uses it as its loop.
 */
export class SqsBatchConsumer {
  readonly #o: SqsBatchConsumerOptions;
  #running = false;
  #pollers: Promise<void>[] = [];
  #abort = new AbortController();
  invocations = 0;

  constructor(options: SqsBatchConsumerOptions) {
    this.#o = options;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#abort = new AbortController();
    const pollers = this.#o.concurrency ?? 1;
    this.#pollers = Array.from({ length: pollers }, () => this.#poll());
  }

  /**
   * Stops polling and waits for invocations in flight to finish and be acknowledged.
   * Messages gathered into a batch that has not started are released (visibility 0),
   * so another consumer gets them now rather than after the visibility timeout.
   */
  async stop(): Promise<void> {
    this.#running = false;
    this.#abort.abort();
    await Promise.all(this.#pollers);
    this.#pollers = [];
  }

  async #poll(): Promise<void> {
    while (this.#running) {
      try {
        const batch = await this.#gather();
        if (batch.length > 0) await this.#invoke(batch);
      } catch (error) {
        if (!this.#running) return;
        this.#o.onError?.(error);
        await sleep(200);
      }
    }
  }

  async #gather(): Promise<Message[]> {
    const batch: Message[] = [];
    try {
      await this.#fill(batch);
    } catch (error) {
      if (this.#running) throw error;
    }
    if (!this.#running && batch.length > 0) {
      await this.#release(batch);
      return [];
    }
    return batch;
  }

  /** Makes messages this consumer holds but will not process visible again at once. */
  async #release(messages: readonly Message[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      try {
        await this.#o.sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: this.#o.queueUrl,
            Entries: messages.slice(i, i + 10).map((m, j) => ({
              Id: String(j),
              ReceiptHandle: m.ReceiptHandle ?? '',
              VisibilityTimeout: 0,
            })),
          }),
        );
      } catch (error) {
        // They still come back after the visibility timeout; nothing is lost.
        this.#o.onError?.(error);
      }
    }
  }

  async #fill(batch: Message[]): Promise<void> {
    const { sqs, queueUrl, batchSize, maxBatchingWindowMs } = this.#o;
    let windowEnds = Number.POSITIVE_INFINITY;
    while (this.#running && batch.length < batchSize) {
      const left = windowEnds - Date.now();
      if (batch.length > 0 && left <= 0) break;
      const response = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, batchSize - batch.length),
          WaitTimeSeconds: batch.length === 0 ? 1 : 0,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
        { abortSignal: this.#abort.signal },
      );
      const messages = response.Messages ?? [];
      if (messages.length > 0) {
        if (batch.length === 0) windowEnds = Date.now() + maxBatchingWindowMs;
        batch.push(...messages);
      } else if (batch.length > 0) {
        await sleep(Math.min(50, Math.max(0, left)));
      } else if (!this.#running) break;
    }
  }

  async #invoke(messages: Message[]): Promise<void> {
    const { handler, functionTimeoutMs } = this.#o;
    const event: SQSEvent = { Records: messages.map((m) => this.#record(m)) };
    this.invocations++;
    let failedIds: Set<string>;
    try {
      let timer: NodeJS.Timeout | undefined;
      const endsAt = Date.now() + functionTimeoutMs;
      const context: ConsumerContext = { getRemainingTimeInMillis: () => Math.max(0, endsAt - Date.now()) };
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`handler timed out after ${functionTimeoutMs} ms`)),
          functionTimeoutMs,
        );
      });
      const response = await Promise.race([handler(event, context), timeout]).finally(() =>
        clearTimeout(timer),
      );
      const ids = new Set(messages.map((m) => m.MessageId));
      const reported = response?.batchItemFailures ?? [];
      if (reported.some((f) => !f.itemIdentifier || !ids.has(f.itemIdentifier))) {
        throw new Error('batchItemFailures named a message that is not in the batch');
      }
      failedIds = new Set(reported.map((f) => f.itemIdentifier));
    } catch (error) {
      // The whole batch comes back after the visibility timeout.
      this.#o.onError?.(error);
      return;
    }
    const done = messages.filter((m) => !failedIds.has(m.MessageId ?? ''));
    for (let i = 0; i < done.length; i += 10) {
      await this.#o.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.#o.queueUrl,
          Entries: done
            .slice(i, i + 10)
            .map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle ?? '' })),
        }),
      );
    }
  }

  #record(m: Message): SQSRecord {
    const a = m.Attributes ?? {};
    return {
      messageId: m.MessageId ?? '',
      receiptHandle: m.ReceiptHandle ?? '',
      body: m.Body ?? '',
      attributes: {
        ApproximateReceiveCount: a.ApproximateReceiveCount ?? '1',
        SentTimestamp: a.SentTimestamp ?? String(Date.now()),
        SenderId: a.SenderId ?? 'LOCAL',
        ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: m.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: this.#o.queueArn,
      awsRegion: this.#o.region,
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
