import { z } from 'zod';

/** The object an S3 ObjectCreated record points at, with its key decoded. */
export interface S3ObjectRef {
  readonly bucket: string;
  readonly key: string;
  readonly eTag: string;
  readonly size: number;
  /** Orders events for the same key; compare after left-padding (see paddedSequencer). */
  readonly sequencer: string;
  readonly eventName: string;
  /** Set when a scheduled labeling job enqueued the object. */
  readonly jobId?: string;
  /** The job's mode: `all` labels the object again even when this model already labeled it. */
  readonly jobMode?: 'all' | 'stale';
}

const s3RecordSchema = z.object({
  eventSource: z.literal('aws:s3'),
  eventName: z.string(),
  s3: z.object({
    bucket: z.object({ name: z.string().min(1) }),
    object: z.object({
      key: z.string().min(1),
      size: z.number().int().nonnegative().default(0),
      eTag: z.string().min(1),
      sequencer: z.string().default('0'),
    }),
  }),
});

const s3EventSchema = z.object({
  Records: z.array(s3RecordSchema).min(1),
  /** Not part of S3's shape: plan-job adds it to the events it writes for a job. */
  labelerJobId: z.string().min(1).optional(),
  /** The job's mode, beside its id (absent: a message from before modes travelled, treated as stale). */
  labelerJobMode: z.enum(['all', 'stale']).optional(),
});
const testEventSchema = z.object({ Event: z.literal('s3:TestEvent'), Service: z.literal('Amazon S3') });

export type ParsedS3Body =
  | { readonly kind: 'test' }
  | { readonly kind: 'objects'; readonly objects: readonly S3ObjectRef[] }
  | { readonly kind: 'invalid'; readonly reason: string };

/** Parses an SQS message body that S3 wrote: an event notification or the configuration test event. */
export function parseS3EventBody(body: string): ParsedS3Body {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { kind: 'invalid', reason: 'the message body is not JSON' };
  }
  if (testEventSchema.safeParse(json).success) return { kind: 'test' };
  const parsed = s3EventSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      kind: 'invalid',
      reason: `not an S3 event notification (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'unknown'})`,
    };
  }
  const objects: S3ObjectRef[] = [];
  for (const r of parsed.data.Records) {
    if (!r.eventName.startsWith('ObjectCreated:')) continue;
    const key = tryDecodeS3Key(r.s3.object.key);
    // S3 never writes such a key; the message is hand-made or corrupt, and no retry can
    // fix it. It is refused whole (no object of it is labeled) so the dead-letter queue
    // keeps the message exactly as it came, visible rather than dropped.
    if (key === undefined) {
      return {
        kind: 'invalid',
        reason: `the object key ${JSON.stringify(r.s3.object.key)} is not valid percent-encoding`,
      };
    }
    objects.push({
      bucket: r.s3.bucket.name,
      key,
      eTag: r.s3.object.eTag.replace(/^"|"$/g, ''),
      size: r.s3.object.size,
      sequencer: r.s3.object.sequencer,
      eventName: r.eventName,
      ...(parsed.data.labelerJobId ? { jobId: parsed.data.labelerJobId } : {}),
      ...(parsed.data.labelerJobId && parsed.data.labelerJobMode
        ? { jobMode: parsed.data.labelerJobMode }
        : {}),
    });
  }
  return { kind: 'objects', objects };
}

/** S3 event keys are form-encoded: `+` is a space, then percent-decoding. Throws URIError on bad encoding. */
export function decodeS3Key(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

/** decodeS3Key, or undefined when the key is not valid percent-encoded UTF-8. */
export function tryDecodeS3Key(key: string): string | undefined {
  try {
    return decodeS3Key(key);
  } catch (error) {
    if (error instanceof URIError) return undefined;
    throw error;
  }
}

/** The inverse, as S3 writes keys into event notifications. */
export function encodeS3Key(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
}

/** Sequencers are hex of varying length; left-padding makes them compare as strings. */
export function paddedSequencer(sequencer: string): string {
  return sequencer.toUpperCase().padStart(32, '0');
}

/** What one ObjectCreated record says; `notification` adds what S3 itself writes for a bucket's notification. */
export interface S3RecordInput {
  readonly bucket: string;
  /** The decoded key; written form-encoded, as S3 writes it. */
  readonly key: string;
  readonly size: number;
  readonly eTag: string;
  readonly sequencer: string;
  readonly region: string;
  readonly eventName?: string;
  readonly eventTime?: string;
  readonly notification?: {
    readonly configurationId: string;
    readonly principalId: string;
    readonly ownerPrincipalId: string;
    readonly sourceIp: string;
    readonly requestId: string;
    readonly hostId: string;
  };
}

/**
 * The one writer of S3 event records (the reader is parseS3EventBody): the local S3
 * notifier, the plan step's job events and the tests all write through it, so a record
 * one of them writes is one the classify code reads.
 */
export function s3EventRecord(o: S3RecordInput): Record<string, unknown> {
  const n = o.notification;
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: o.region,
    eventTime: o.eventTime ?? new Date().toISOString(),
    eventName: o.eventName ?? 'ObjectCreated:Put',
    ...(n
      ? {
          userIdentity: { principalId: n.principalId },
          requestParameters: { sourceIPAddress: n.sourceIp },
          responseElements: { 'x-amz-request-id': n.requestId, 'x-amz-id-2': n.hostId },
        }
      : {}),
    s3: {
      s3SchemaVersion: '1.0',
      ...(n ? { configurationId: n.configurationId } : {}),
      bucket: {
        name: o.bucket,
        ...(n ? { ownerIdentity: { principalId: n.ownerPrincipalId } } : {}),
        arn: `arn:aws:s3:::${o.bucket}`,
      },
      object: { key: encodeS3Key(o.key), size: o.size, eTag: o.eTag, sequencer: o.sequencer },
    },
  };
}

/** An SQS message body of S3 event records; a job's events carry its id and mode beside them. */
export function s3EventBody(
  records: readonly S3RecordInput[],
  job?: { readonly jobId: string; readonly mode: 'all' | 'stale' },
): string {
  return JSON.stringify({
    Records: records.map(s3EventRecord),
    ...(job ? { labelerJobId: job.jobId, labelerJobMode: job.mode } : {}),
  });
}
