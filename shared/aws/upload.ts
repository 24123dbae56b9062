import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { relative, sep } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ImageTooLargeError, LabelerError } from '../errors.ts';
import { mapLimit } from '../labeling/image-labeler.ts';
import { toLabelerError } from './errors.ts';

export interface Uploaded {
  readonly file: string;
  readonly bucket: string;
  readonly key: string;
  readonly eTag: string;
}

/** One file's upload: stored (its eTag), refused or failed (an error for its row), or never started. */
export type UploadOutcome =
  | ({ readonly status: 'uploaded' } & Uploaded)
  | { readonly status: 'failed'; readonly file: string; readonly key: string; readonly error: LabelerError }
  | { readonly status: 'skipped'; readonly file: string; readonly key: string };

/**
 * Parts for multipart uploads. S3 needs at least 5 MiB per part but the last; the local
 * emulator takes at most 11 MiB per request, so one PUT cannot carry every image the
 * pipeline accepts (IMAGE_LIMITS.maxBytes).
 */
export const UPLOAD_PART_BYTES = 5 * 1024 * 1024;

/** The S3 key for a file below `root`: `prefix` + its relative path with `/` separators. */
export function keyFor(prefix: string, root: string, file: string): string {
  const rel = relative(root, file).split(sep).join('/');
  return `${prefix}${rel === '' ? file.split(sep).pop() : rel}`;
}

/**
 * Uploads files concurrently, multipart above UPLOAD_PART_BYTES; one outcome per file, in
 * input order. A file over `maxBytes` is refused from its size, never sent; a file that
 * cannot be read or stored fails alone. Once `signal` aborts, files not started are skipped.
 */
export async function uploadFiles(
  s3: S3Client,
  options: {
    bucket: string;
    prefix: string;
    root: string;
    maxBytes: number;
    concurrency?: number;
    signal?: AbortSignal;
  },
  files: readonly string[],
  onUploaded?: (count: number) => void,
): Promise<UploadOutcome[]> {
  let done = 0;
  return mapLimit(files, options.concurrency ?? 16, async (file): Promise<UploadOutcome> => {
    const key = keyFor(options.prefix, options.root, file);
    if (options.signal?.aborted) return { status: 'skipped', file, key };
    try {
      const size = await stat(file).then(
        (info) => info.size,
        (cause: unknown) => {
          throw new LabelerError('file/unreadable', `${file} cannot be read: ${(cause as Error).message}`, {
            cause,
          });
        },
      );
      if (size > options.maxBytes) throw new ImageTooLargeError(size, options.maxBytes);
      const eTag = await put(s3, options.bucket, key, file);
      onUploaded?.(++done);
      return { status: 'uploaded', file, bucket: options.bucket, key, eTag };
    } catch (error) {
      return {
        status: 'failed',
        file,
        key,
        error: toLabelerError(error, `upload of ${file} to s3://${options.bucket}/${key}`),
      };
    }
  });
}

async function put(s3: S3Client, bucket: string, key: string, file: string): Promise<string> {
  const body = createReadStream(file);
  const opened = new Promise<void>((resolve, reject) => {
    body.once('open', () => resolve());
    body.once('error', reject);
  });
  try {
    await opened.catch((cause: unknown) => {
      throw new LabelerError('file/unreadable', `${file} cannot be read: ${(cause as Error).message}`, {
        cause,
      });
    });
    const upload = new Upload({
      client: s3,
      params: { Bucket: bucket, Key: key, Body: body },
      partSize: UPLOAD_PART_BYTES,
      queueSize: 2,
      // A failed multipart upload is aborted, so no orphaned parts stay behind.
      leavePartsOnError: false,
    });
    const response = await upload.done();
    return (response.ETag ?? '').replace(/^"|"$/g, '');
  } finally {
    body.destroy();
  }
}
