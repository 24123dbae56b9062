import type { S3Client } from '@aws-sdk/client-s3';
import type { CountPorts } from '../labeling/job-estimate.ts';
import { imageId, type ModelRef } from '../labeling/results.ts';
import type { AwsClients } from './clients.ts';
import { DynamoResultsStore } from './dynamo-results-store.ts';
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

/**
 * The ports a job's count reads (shared/labeling/job-estimate.ts): the prefix's listing and,
 * for mode `stale`, this model version's existing results (as the workers read them).
 */
export function jobCountPorts(
  clients: Pick<AwsClients, 's3' | 'db'>,
  resultsTable: string,
  bucket: string,
  prefix: string,
  model: ModelRef,
): CountPorts {
  const results = new DynamoResultsStore(clients.db, resultsTable);
  return {
    async *listPages() {
      try {
        for await (const page of listPages(clients.s3, { bucket, prefix, maxKeys: 1000 })) {
          yield page.objects.map(({ key, eTag }) => ({ key, eTag }));
        }
      } catch (error) {
        throw toLabelerError(error, `S3 ListObjectsV2 s3://${bucket}/${prefix}`);
      }
    },
    async countLabeled(objects) {
      const existing = await results.findExisting(
        objects.map(({ key }) => ({ bucket, key })),
        model,
      );
      return objects.filter((o) => existing.get(imageId({ bucket, key: o.key }))?.eTag === o.eTag).length;
    },
  };
}
