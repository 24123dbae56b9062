import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';

/**
 * The one prefix rule of `upload` and `jobs` (issue 20, item 6): a prefix names a folder,
 * so it ends with "/" unless it is "" (the whole bucket). `datasets/h1` is `datasets/h1/`:
 * it never also takes `datasets/h1gpu/`. Keys do not start with "/".
 */
export function folderPrefix(prefix: string): string {
  if (prefix.startsWith('/')) {
    throw new LabelerError(CODE.job.invalidRequest, `--prefix must not start with "/", got "${prefix}"`);
  }
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/**
 * Where a job (or an export by prefix) reads, from --bucket and --prefix as typed. An
 * `s3://bucket/prefix` URL given as the prefix is taken as that bucket and key prefix,
 * unless --bucket names another bucket: then it is refused, saying which to give.
 */
export function jobLocation(
  typed: { readonly bucket?: string | undefined; readonly prefix: string },
  defaultBucket: string,
): { bucket: string; prefix: string } {
  const url = /^s3:\/\/([^/]*)\/?(.*)$/is.exec(typed.prefix);
  if (!url) return { bucket: typed.bucket ?? defaultBucket, prefix: typed.prefix };
  const [, bucket = '', prefix = ''] = url;
  if (bucket === '') {
    throw new LabelerError(
      CODE.job.invalidRequest,
      `--prefix "${typed.prefix}" is an s3:// URL without a bucket; give a key prefix such as datasets/h1/ (with --bucket <b> for another bucket than the stack's)`,
    );
  }
  if (typed.bucket !== undefined && typed.bucket !== bucket) {
    throw new LabelerError(
      CODE.job.invalidRequest,
      `--prefix "${typed.prefix}" names bucket ${bucket} but --bucket is ${typed.bucket}; ` +
        `give --bucket ${typed.bucket} --prefix <key prefix>, or the s3:// URL alone`,
    );
  }
  return { bucket, prefix };
}
