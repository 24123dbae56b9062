import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import type { TruthObjects } from '../labeling/ground-truth.ts';
import { listPage } from './list-objects.ts';

/** The stack's stored review answers (truth/ in its results bucket), read through S3. */
export function s3TruthObjects(s3: S3Client, bucket: string): TruthObjects {
  const failed = (what: string, cause: unknown) =>
    new LabelerError(
      CODE.truth.unreadable,
      `${what}: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
      },
    );
  return {
    async *list(prefix) {
      let token: string | undefined;
      do {
        const page = await listPage(s3, { bucket, prefix, ...(token ? { token } : {}) }).catch(
          (cause: unknown) => {
            throw failed(`cannot list s3://${bucket}/${prefix}`, cause);
          },
        );
        for (const o of page.objects) yield o.key;
        token = page.next;
      } while (token);
    },
    async read(key) {
      try {
        const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return (await out.Body?.transformToString('utf8')) ?? '';
      } catch (cause) {
        throw failed(`cannot read s3://${bucket}/${key}`, cause);
      }
    },
  };
}
