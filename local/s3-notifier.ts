import { randomBytes } from 'node:crypto';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { s3EventBody } from '../shared/labeling/s3-event.ts';

/** What a bucket's NotificationConfiguration says: which keys go to which queue. */
export interface QueueNotification {
  readonly id: string;
  readonly bucket: string;
  readonly queueUrl: string;
  readonly prefix: string;
  readonly suffixes: readonly string[];
}

interface HookRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  params: unknown;
  query: unknown;
}
interface HookReply {
  statusCode: number;
}
/** The few parts of the emulator's HTTP server and object store the notifier needs. */
export interface S3ServerHooks {
  addHook(name: 'onResponse', hook: (request: HookRequest, reply: HookReply) => Promise<void>): unknown;
}
/** Reads the stored object's eTag and size, as S3 knows them when it sends the event. */
export type S3ObjectLookup = (
  bucket: string,
  key: string,
) => Promise<{ etag: string; contentLength: number }>;

/**
 * Emulates S3 event notifications to SQS: after every successful PutObject, CopyObject
 * and CompleteMultipartUpload, sends the exact AWS event JSON (eventVersion 2.1,
 * form-encoded key, unquoted eTag, size, sequencer) to each matching queue.
 */
export class S3Notifier {
  readonly #region: string;
  #sqs: SQSClient | undefined;
  #lookup: S3ObjectLookup | undefined;
  readonly #configs: QueueNotification[] = [];
  readonly #pending = new Set<Promise<void>>();
  #sequence = 0n;
  onError: (error: unknown) => void = (error) => process.stderr.write(`s3 notifier: ${String(error)}\n`);

  /** Registers on the server before it listens; `connect` supplies the clients once it does. */
  constructor(server: S3ServerHooks, region: string) {
    this.#region = region;
    server.addHook('onResponse', async (request, reply) => {
      const eventName = objectCreatedEvent(request, reply.statusCode);
      if (!eventName) return;
      const params = request.params as { bucket?: string; '*'?: string };
      const bucket = params.bucket;
      const key = params['*'];
      if (!bucket || !key) return;
      const lookup = this.#lookup;
      if (!lookup || this.#configs.length === 0) return;
      const sent = lookup(bucket, key)
        .then((object) => this.#publish(eventName, bucket, key, object))
        .catch((error: unknown) => this.onError(error));
      this.#pending.add(sent);
      void sent.finally(() => this.#pending.delete(sent));
    });
  }

  connect(sqs: SQSClient, lookup: S3ObjectLookup): void {
    this.#sqs = sqs;
    this.#lookup = lookup;
  }

  /** Adds a queue configuration and, as S3 does, sends the queue an `s3:TestEvent`. */
  async configure(config: QueueNotification): Promise<void> {
    this.#configs.push(config);
    await this.#send(config.queueUrl, {
      Service: 'Amazon S3',
      Event: 's3:TestEvent',
      Time: new Date().toISOString(),
      Bucket: config.bucket,
      RequestId: randomBytes(8).toString('hex').toUpperCase(),
      HostId: randomBytes(24).toString('base64'),
    });
  }

  /** Resolves when every notification triggered so far has been sent. */
  async flush(): Promise<void> {
    await Promise.all([...this.#pending]);
  }

  async #publish(
    eventName: string,
    bucket: string,
    key: string,
    object: { etag: string; contentLength: number },
  ) {
    // Sequencers grow for each change; hex, as S3 writes them.
    this.#sequence += 1n;
    const sequencer = ((BigInt(Date.now()) << 20n) + this.#sequence)
      .toString(16)
      .toUpperCase()
      .padStart(18, '0');
    for (const config of this.#configs) {
      if (config.bucket !== bucket || !key.startsWith(config.prefix)) continue;
      if (config.suffixes.length > 0 && !config.suffixes.some((s) => key.endsWith(s))) continue;
      const record = {
        region: this.#region,
        bucket,
        key,
        size: object.contentLength,
        eTag: object.etag.replace(/^"|"$/g, ''),
        sequencer,
        eventName,
        notification: {
          configurationId: config.id,
          principalId: 'AWS:LOCAL',
          ownerPrincipalId: 'LOCAL',
          sourceIp: '127.0.0.1',
          requestId: randomBytes(8).toString('hex').toUpperCase(),
          hostId: randomBytes(24).toString('base64'),
        },
      };
      await this.#sendBody(config.queueUrl, s3EventBody([record]));
    }
  }

  async #send(queueUrl: string, body: unknown): Promise<void> {
    await this.#sendBody(queueUrl, JSON.stringify(body));
  }

  async #sendBody(queueUrl: string, body: string): Promise<void> {
    if (!this.#sqs) throw new Error('the notifier is not connected to SQS');
    await this.#sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
  }
}

function objectCreatedEvent(request: HookRequest, status: number): string | undefined {
  if (status !== 200) return undefined;
  const query = (request.query ?? {}) as Record<string, unknown>;
  if (request.method === 'PUT') {
    if ('uploadId' in query || 'partNumber' in query) return undefined;
    return request.headers['x-amz-copy-source'] ? 'ObjectCreated:Copy' : 'ObjectCreated:Put';
  }
  if (request.method === 'POST' && 'uploadId' in query) return 'ObjectCreated:CompleteMultipartUpload';
  return undefined;
}
