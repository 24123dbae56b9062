import type { S3Client } from '@aws-sdk/client-s3';
import { toLabelerError } from './errors.ts';
import { listPages } from './list-objects.ts';

/**
 * Objects under `prefix`, listed a page at a time until there are no more or `atMost`
 * have been seen (then the answer is `atMost` or a little over: a whole page is counted).
 */
export async function countObjects(
  s3: S3Client,
  bucket: string,
  prefix: string,
  atMost: number,
  pageSize = 1000,
): Promise<number> {
  let count = 0;
  try {
    for await (const page of listPages(s3, { bucket, prefix, maxKeys: pageSize })) {
      count += page.objects.length;
      if (count >= atMost) break;
    }
  } catch (error) {
    throw toLabelerError(error, `S3 ListObjectsV2 s3://${bucket}/${prefix}`);
  }
  return count;
}
