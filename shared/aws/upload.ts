import { readFile } from 'node:fs/promises';
import { relative, sep } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { mapLimit } from '../labeling/image-labeler.ts';
import { toLabelerError } from './errors.ts';

export interface Uploaded {
  readonly file: string;
  readonly bucket: string;
  readonly key: string;
  readonly eTag: string;
}

/** The S3 key for a file below `root`: `prefix` + its relative path with `/` separators. */
export function keyFor(prefix: string, root: string, file: string): string {
  const rel = relative(root, file).split(sep).join('/');
  return `${prefix}${rel === '' ? file.split(sep).pop() : rel}`;
}

/** Uploads files concurrently; returns each object's key and eTag in the input order. */
export async function uploadFiles(
  s3: S3Client,
  options: { bucket: string; prefix: string; root: string; concurrency?: number },
  files: readonly string[],
  onUploaded?: (count: number) => void,
): Promise<Uploaded[]> {
  let done = 0;
  return mapLimit(files, options.concurrency ?? 16, async (file) => {
    const key = keyFor(options.prefix, options.root, file);
    const body = await readFile(file);
    try {
      const response = await s3.send(new PutObjectCommand({ Bucket: options.bucket, Key: key, Body: body }));
      onUploaded?.(++done);
      return { file, bucket: options.bucket, key, eTag: (response.ETag ?? '').replace(/^"|"$/g, '') };
    } catch (error) {
      throw toLabelerError(error, `S3 PutObject s3://${options.bucket}/${key}`);
    }
  });
}
