import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Destination } from '../labeling/export-destination.ts';
import { toLabelerError } from './errors.ts';

export interface S3Location {
  readonly bucket: string;
  readonly key: string;
}

/**
 * An S3 object through lib-storage's Upload: multipart in 8 MiB parts (a single PutObject
 * when the whole export is smaller), so an export of any size streams through bounded
 * memory, and the object exists only once the upload completes.
 */
export function s3Destination(s3: S3Client, location: S3Location, contentType: string): Destination {
  const name = `s3://${location.bucket}/${location.key}`;
  const body = new PassThrough({ highWaterMark: 1024 * 1024 });
  const upload = new Upload({
    client: s3,
    params: { Bucket: location.bucket, Key: location.key, Body: body, ContentType: contentType },
    partSize: 8 * 1024 * 1024,
    queueSize: 4,
    leavePartsOnError: false,
  });
  let state: 'open' | 'committed' | 'aborted' = 'open';
  const done = upload.done();
  // A failed upload (no such bucket, access denied) stops taking bytes: the next write must
  // see the failure rather than wait for a drain that never comes.
  const finished = done.then(
    () => undefined,
    (error: unknown) => {
      throw toLabelerError(error, `S3 upload ${name}`);
    },
  );
  finished.catch(() => undefined);
  const failed = finished.then(() => new Promise<never>(() => undefined));
  failed.catch(() => undefined);
  return {
    name,
    async write(chunk) {
      if (!body.write(chunk)) await Promise.race([once(body, 'drain'), failed]);
    },
    async commit() {
      body.end();
      await finished;
      state = 'committed';
    },
    async abort() {
      if (state !== 'open') return;
      state = 'aborted';
      await upload.abort().catch(() => undefined);
      body.destroy();
      await done.catch(() => undefined);
    },
  };
}
