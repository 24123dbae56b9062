import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { decodeS3Key } from '../labeling/s3-event.ts';

/** One listed object: its key, size, ETag without quotes and last-modified time (ms). */
export interface S3Listing {
  readonly key: string;
  readonly size: number;
  readonly eTag: string;
  readonly modified: number;
}

export interface ListOptions {
  readonly bucket: string;
  readonly prefix: string;
  /** A page's NextContinuationToken, to go on from it. */
  readonly token?: string;
  /** At most this many keys per page (S3: 1,000 at most). */
  readonly maxKeys?: number;
  /** Group keys by this separator into `prefixes` (the "folders"). */
  readonly delimiter?: string;
}

export interface ListedPage {
  readonly objects: S3Listing[];
  readonly prefixes: string[];
  /** Where the next page starts; absent on the last page. */
  readonly next?: string;
}

/**
 * One ListObjectsV2 page. The SDK's errors pass through: each caller says what failed and why.
 *
 * Keys are asked for URL-encoded (`EncodingType=url`) and decoded here: in plain XML a key's
 * carriage return reads back as a line feed (XML normalises line ends) and some control
 * characters cannot be written at all, so an unencoded listing names another key (decision
 * 0026). S3 encodes as in event notifications: `+` is a space.
 */
export async function listPage(s3: S3Client, options: ListOptions): Promise<ListedPage> {
  const page = await s3.send(
    new ListObjectsV2Command({
      Bucket: options.bucket,
      Prefix: options.prefix,
      EncodingType: 'url',
      ...(options.maxKeys ? { MaxKeys: options.maxKeys } : {}),
      ...(options.delimiter ? { Delimiter: options.delimiter } : {}),
      ...(options.token ? { ContinuationToken: options.token } : {}),
    }),
  );
  // An answer without EncodingType (a store that ignores the parameter) holds the keys as they are.
  const decode = page.EncodingType === 'url' ? decodeS3Key : (text: string) => text;
  const objects = (page.Contents ?? []).flatMap((o) =>
    o.Key
      ? [
          {
            key: decode(o.Key),
            size: o.Size ?? 0,
            eTag: (o.ETag ?? '').replaceAll('"', ''),
            modified: o.LastModified?.getTime() ?? 0,
          },
        ]
      : [],
  );
  const prefixes = (page.CommonPrefixes ?? []).flatMap((p) => (p.Prefix ? [decode(p.Prefix)] : []));
  return page.IsTruncated && page.NextContinuationToken
    ? { objects, prefixes, next: page.NextContinuationToken }
    : { objects, prefixes };
}

/** Every page from `options.token` (or the start) on; stop early by leaving the loop. */
export async function* listPages(s3: S3Client, options: ListOptions): AsyncGenerator<ListedPage> {
  let token = options.token;
  do {
    const page = await listPage(s3, { ...options, ...(token ? { token } : {}) });
    yield page;
    token = page.next;
  } while (token);
}
