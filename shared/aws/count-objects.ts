import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { toLabelerError } from './errors.ts';

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
  let token: string | undefined;
  do {
    const page = await s3
      .send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix,
          MaxKeys: pageSize,
          ...(token ? { ContinuationToken: token } : {}),
        }),
      )
      .catch((error: unknown) => {
        throw toLabelerError(error, `S3 ListObjectsV2 s3://${bucket}/${prefix}`);
      });
    count += page.KeyCount ?? page.Contents?.length ?? 0;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token && count < atMost);
  return count;
}
