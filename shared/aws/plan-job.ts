import { randomUUID } from 'node:crypto';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { type DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { LabelerError } from '../errors.ts';
import { JOBS_TABLE } from '../settings.ts';
import { toLabelerError } from './errors.ts';
import { encodeS3Key } from './s3-event.ts';

export const jobRequestSchema = z.object({
  jobId: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,128}$/)
    .optional(),
  bucket: z.string().min(3),
  prefix: z.string().default(''),
});
export type JobRequest = z.input<typeof jobRequestSchema>;

export interface PlannedJob {
  readonly jobId: string;
  readonly objects: number;
  readonly messages: number;
}

/** Objects per queue message: one S3-event-shaped body carries several records. */
const OBJECTS_PER_MESSAGE = 10;

/**
 * Plans a labeling job over an S3 prefix: lists the objects and enqueues them on the
 * bulk queue as S3 event notifications tagged with the job id, so the same classify
 * use case (Lambda or GPU worker) labels them. Records the job in the jobs table.
 */
export async function planJob(
  input: unknown,
  clients: { s3: S3Client; sqs: SQSClient; db: DynamoDBDocumentClient },
  target: { queueUrl: string; jobsTable: string; region: string },
): Promise<PlannedJob> {
  const parsed = jobRequestSchema.safeParse(input);
  if (!parsed.success) {
    throw new LabelerError(
      'job/invalid-request',
      `invalid job request: ${parsed.error.issues.map((i) => i.message).join('; ')}`,
    );
  }
  const { bucket, prefix } = parsed.data;
  const jobId = parsed.data.jobId ?? randomUUID();
  let objects = 0;
  let messages = 0;
  let pending: Array<Record<string, unknown>> = [];
  let batch: string[] = [];

  const flushBatch = async () => {
    if (batch.length === 0) return;
    const entries = batch.map((body, i) => ({ Id: String(i), MessageBody: body }));
    batch = [];
    const sent = await clients.sqs
      .send(new SendMessageBatchCommand({ QueueUrl: target.queueUrl, Entries: entries }))
      .catch((error: unknown) => {
        throw toLabelerError(error, 'SQS SendMessageBatch');
      });
    if ((sent.Failed ?? []).length > 0) {
      throw new LabelerError(
        'job/enqueue-failed',
        `${sent.Failed?.length} messages were refused by the queue`,
        {
          permanent: false,
        },
      );
    }
    messages += entries.length;
  };
  const flushRecords = async () => {
    if (pending.length === 0) return;
    batch.push(JSON.stringify({ Records: pending, labelerJobId: jobId }));
    pending = [];
    if (batch.length === 10) await flushBatch();
  };

  let token: string | undefined;
  do {
    const page = await clients.s3
      .send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }))
      .catch((error: unknown) => {
        throw toLabelerError(error, `S3 ListObjectsV2 s3://${bucket}/${prefix}`);
      });
    for (const object of page.Contents ?? []) {
      if (!object.Key || object.Key.endsWith('/')) continue;
      objects++;
      pending.push({
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: target.region,
        eventTime: new Date().toISOString(),
        eventName: 'ObjectCreated:Put',
        s3: {
          s3SchemaVersion: '1.0',
          bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
          object: {
            key: encodeS3Key(object.Key),
            size: object.Size ?? 0,
            eTag: (object.ETag ?? '').replace(/"/g, ''),
            sequencer: '0',
          },
        },
      });
      if (pending.length === OBJECTS_PER_MESSAGE) await flushRecords();
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  await flushRecords();
  await flushBatch();

  await clients.db
    .send(
      new PutCommand({
        TableName: target.jobsTable,
        Item: {
          [JOBS_TABLE.partitionKey]: jobId,
          status: 'queued',
          bucket,
          prefix,
          total: objects,
          messages,
          createdAt: new Date().toISOString(),
        },
      }),
    )
    .catch((error: unknown) => {
      throw toLabelerError(error, 'DynamoDB PutItem (job)');
    });
  return { jobId, objects, messages };
}
