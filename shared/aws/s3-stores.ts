import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ImageTooLargeError, LabelerError, ObjectNotFoundError } from '../errors.ts';
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
      throw toLabelerError(error, `S3 GetObject ${where}`);
    }
    const eTag = response.ETag?.replace(/^"|"$/g, '');
    if (eTag && eTag !== ref.eTag) {
      // Overwritten since the event: the newer upload has its own event and result.
      response.Body?.transformToWebStream()
        .cancel()
        .catch(() => undefined);
      throw new LabelerError(
        'object/changed',
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
