import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { CODE } from '../error-codes.ts';
import { ImageTooLargeError, LabelerError, ObjectNotFoundError, ObjectUnreadableError } from '../errors.ts';
import type { ExportStore, ImageStore } from '../labeling/results.ts';
import { toLabelerError } from './errors.ts';

/** Reads images from S3 and checks that the object is still the one the event announced. */
export class S3ImageStore implements ImageStore {
  readonly #s3: S3Client;
  readonly #maxBytes: number;

  constructor(s3: S3Client, maxBytes: number) {
    this.#s3 = s3;
    this.#maxBytes = maxBytes;
  }

  async get(ref: { bucket: string; key: string; eTag: string }): Promise<Uint8Array> {
    const where = `s3://${ref.bucket}/${ref.key}`;
    let response: GetObjectCommandOutput;
    try {
      response = await this.#s3.send(new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
    } catch (error) {
      const name = (error as { name?: string }).name;
      if (name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchBucket') {
        throw new ObjectNotFoundError(where, error);
      }
      throw unreadableObjectError(error, where) ?? toLabelerError(error, `S3 GetObject ${where}`);
    }
    const eTag = response.ETag?.replace(/^"|"$/g, '');
    if (eTag && eTag !== ref.eTag) {
      // Overwritten since the event: the newer upload has its own event and result.
      response.Body?.transformToWebStream()
        .cancel()
        .catch(() => undefined);
      throw new LabelerError(
        CODE.object.changed,
        `${where} changed since the event (eTag ${eTag}, expected ${ref.eTag})`,
      );
    }
    if ((response.ContentLength ?? 0) > this.#maxBytes) {
      throw new ImageTooLargeError(response.ContentLength ?? 0, this.#maxBytes);
    }
    try {
      return (await response.Body?.transformToByteArray()) ?? new Uint8Array(0);
    } catch (error) {
      throw toLabelerError(error, `S3 GetObject body ${where}`);
    }
  }
}

/**
 * 4xx answers to GetObject that the same request can never turn into a success. A
 * 403 is a permission (role, bucket policy, KMS key policy; without s3:ListBucket S3 also
 * answers 403 for a key that does not exist) except for the signing and clock errors
 * below, which come from this process's credentials and clear on a retry.
 */
const TRANSIENT_403 = new Set([
  'RequestTimeTooSkewed',
  'SignatureDoesNotMatch',
  'InvalidAccessKeyId',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
]);
const BAD_REQUEST_400 = new Set([
  'InvalidArgument',
  'InvalidRequest',
  'InvalidBucketName',
  'KeyTooLongError',
]);

export function unreadableObjectError(error: unknown, where: string): ObjectUnreadableError | undefined {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  const name = e?.name ?? '';
  const status = e?.$metadata?.httpStatusCode;
  if (name === 'InvalidObjectState') {
    return new ObjectUnreadableError(
      CODE.object.archived,
      `${where} is in an archive storage class (Glacier, Deep Archive): restore it, then label it again`,
      error,
    );
  }
  if (BAD_REQUEST_400.has(name)) {
    return new ObjectUnreadableError(CODE.object.badRequest, `S3 refused to read ${where}: ${name}`, error);
  }
  if (
    (status === 403 || name === 'AccessDenied' || name === 'AllAccessDisabled') &&
    !TRANSIENT_403.has(name)
  ) {
    return new ObjectUnreadableError(
      CODE.object.accessDenied,
      `access to ${where} was denied (${name || 'HTTP 403'}): the labeling role, the bucket policy or the object's KMS key does not allow reading it`,
      error,
    );
  }
  return undefined;
}

/** Writes the JSON Lines export, one object per batch. */
export class S3ExportStore implements ExportStore {
  readonly #s3: S3Client;
  readonly #bucket: string;

  constructor(s3: S3Client, bucket: string) {
    this.#s3 = s3;
    this.#bucket = bucket;
  }

  async putLines(key: string, lines: readonly string[]): Promise<void> {
    try {
      await this.#s3.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          Body: `${lines.join('\n')}\n`,
          ContentType: 'application/x-ndjson',
        }),
      );
    } catch (error) {
      throw toLabelerError(error, `S3 PutObject s3://${this.#bucket}/${key}`);
    }
  }
}
