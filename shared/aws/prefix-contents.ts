import type { S3Client } from '@aws-sdk/client-s3';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import { listPage } from './list-objects.ts';

/** How many neighbouring folders and keys a "no objects" message names. */
const SHOWN = 12;

/**
 * Refuses a prefix under which the bucket holds no object (issue 20, item 6: a typo'd
 * prefix made a job of 0 objects that "succeeded"), saying what the nearest folder that
 * does hold objects contains, so the typo shows. A listing that fails is not judged here:
 * the job then fails while planning, with its reason.
 */
export async function assertPrefixHasObjects(s3: S3Client, bucket: string, prefix: string): Promise<void> {
  const listed = await listPage(s3, { bucket, prefix, maxKeys: 1 }).catch(() => undefined);
  if (!listed || listed.objects.length > 0) return;
  let parent = prefix;
  let around: { folders: string[]; keys: string[]; more: boolean } | undefined;
  do {
    parent = parentFolder(parent);
    const page = await listPage(s3, { bucket, prefix: parent, delimiter: '/', maxKeys: SHOWN }).catch(
      () => undefined,
    );
    if (!page) break;
    if (page.objects.length > 0 || page.prefixes.length > 0) {
      around = {
        folders: page.prefixes.map((p) => p.slice(parent.length)),
        keys: page.objects.map((o) => o.key.slice(parent.length)),
        more: page.next !== undefined,
      };
    }
  } while (!around && parent !== '');
  const where = `s3://${bucket}/${prefix}`;
  const seen = around
    ? `s3://${bucket}/${parent} holds ${[...around.folders, ...around.keys].join(', ')}${around.more ? ', ...' : ''}`
    : `s3://${bucket} is empty`;
  throw new LabelerError(
    CODE.job.noObjects,
    `no objects under ${where} (listed with ListObjectsV2); ${seen}`,
  );
}

/** `a/b/c/` → `a/b/`, `a/b` → `a/`, `a/` → `` . */
function parentFolder(prefix: string): string {
  const trimmed = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  const cut = trimmed.lastIndexOf('/');
  return cut < 0 ? '' : trimmed.slice(0, cut + 1);
}
