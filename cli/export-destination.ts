import { once } from 'node:events';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { toLabelerError } from '../shared/aws/errors.ts';
import { CODE } from '../shared/error-codes.ts';
import { LabelerError } from '../shared/errors.ts';
import { UsageError } from './args.ts';

/**
 * Where an export goes. Nothing appears under the final name until `commit`: a failed or
 * interrupted export leaves no half file (a temporary file renamed into place; an S3
 * multipart upload completed only at the end, aborted otherwise).
 */
export interface Destination {
  /** What the user named, for messages. */
  readonly name: string;
  /** Resolves when the destination can take more. */
  write(chunk: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  /** Discards what was written; safe to call at any time, more than once, and after commit (then it does nothing). */
  abort(): Promise<void>;
}

export interface S3Location {
  readonly bucket: string;
  readonly key: string;
}

/** `s3://bucket/key` as a location, undefined for anything else; a bucket without a key is refused. */
export function parseS3Url(out: string): S3Location | undefined {
  if (!out.startsWith('s3://')) return undefined;
  const rest = out.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const key = slash < 0 ? '' : rest.slice(slash + 1);
  if (bucket === '' || key === '' || key.endsWith('/')) {
    throw new UsageError(`"${out}" names no object: use s3://<bucket>/<key>`);
  }
  return { bucket, key };
}

/**
 * A local file, written as `.<name>.<pid>.tmp` beside it and renamed over it at the end,
 * so a reader of the name sees the old file or the whole new one, never part of one.
 */
export async function fileDestination(path: string): Promise<Destination> {
  const target = resolve(path);
  const temporary = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temporary, 'wx');
  } catch (error) {
    throw new LabelerError(
      CODE.export.writeFailed,
      `cannot write ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message} creating a file in ${dirname(target)}`,
      { cause: error },
    );
  }
  const file = handle;
  let state: 'open' | 'committed' | 'aborted' = 'open';
  const fail = (error: unknown): never => {
    throw new LabelerError(CODE.export.writeFailed, `cannot write ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  };
  return {
    name: path,
    async write(chunk) {
      await file.write(chunk).catch(fail);
    },
    async commit() {
      await file.sync().catch(fail);
      await file.close().catch(fail);
      await rename(temporary, target).catch(fail);
      state = 'committed';
    },
    async abort() {
      if (state !== 'open') return;
      state = 'aborted';
      await file.close().catch(() => undefined);
      await rm(temporary, { force: true });
    },
  };
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

/** Standard output (`--out -`): written as it comes; a reader that goes away ends the process (status 141). */
export function stdoutDestination(): Destination {
  return {
    name: 'standard output',
    async write(chunk) {
      if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
    },
    async commit() {
      if (process.stdout.writableNeedDrain) await once(process.stdout, 'drain');
    },
    async abort() {},
  };
}
