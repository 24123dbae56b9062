import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { mapLimit } from '../labeling/image-labeler.ts';
import { RESULTS_PREFIX } from '../settings.ts';
import { toLabelerError } from './errors.ts';
import { listPages } from './list-objects.ts';

export interface QueueDepth {
  /** Waiting to be received. */
  readonly visible: number;
  /** Received, not yet deleted (in flight). */
  readonly inFlight: number;
  readonly delayed: number;
}

/**
 * A queue's depth from its attributes. The age of its oldest message is not among
 * them: on AWS it is the CloudWatch metric ApproximateAgeOfOldestMessage.
 */
export async function readQueueDepth(sqs: SQSClient, queueUrl: string): Promise<QueueDepth> {
  try {
    const { Attributes: a = {} } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    return {
      visible: Number(a.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
      delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
    };
  } catch (error) {
    throw toLabelerError(error, `reading the attributes of ${queueUrl}`);
  }
}

export interface RecentResults {
  readonly since: string;
  /** Result batch objects (one per classify invocation or GPU batch) written since then. */
  readonly batches: number;
  /** Results in them: counted exactly when `estimated` is false, else from their size. */
  readonly results: number;
  readonly ok?: number;
  readonly failed?: number;
  readonly estimated: boolean;
  /** The listing stopped at `maxPages` pages a day and model: there may be more. */
  readonly truncated: boolean;
  readonly models: readonly string[];
}

export interface RecentResultsOptions {
  readonly since: Date;
  readonly now?: Date;
  /** Batch objects read to count their lines; beyond, results are estimated from bytes. @default 50 */
  readonly readLimit?: number;
  /** List pages (1,000 objects) per model and day. @default 20 */
  readonly maxPages?: number;
}

/**
 * Results written since a time, from the JSON Lines export: every classify batch writes
 * one object under `results/model=<id>/date=<day>/`, so listing today's (and, across
 * midnight, yesterday's) folder and keeping the objects modified since then counts them
 * without touching the results table (which has no index by time; a Scan is never used).
 * A busy day has many objects to list (one page per 1,000 batches), hence `maxPages`.
 */
export async function countRecentResults(
  s3: S3Client,
  bucket: string,
  options: RecentResultsOptions,
): Promise<RecentResults> {
  const now = options.now ?? new Date();
  const sinceMs = options.since.getTime();
  const maxPages = options.maxPages ?? 20;
  const readLimit = options.readLimit ?? 50;
  const days = [...new Set([options.since, now].map((d) => d.toISOString().slice(0, 10)))];
  try {
    const models = await listModelPrefixes(s3, bucket);
    const recent: Array<{ key: string; size: number; modified: number }> = [];
    let truncated = false;
    for (const model of models) {
      for (const day of days) {
        let pages = 0;
        const prefix = `${RESULTS_PREFIX}/model=${model}/date=${day}/`;
        for await (const page of listPages(s3, { bucket, prefix })) {
          for (const o of page.objects) {
            if (o.modified >= sinceMs) recent.push({ key: o.key, size: o.size, modified: o.modified });
          }
          if (++pages >= maxPages) {
            if (page.next) truncated = true;
            break;
          }
        }
      }
    }
    recent.sort((a, b) => b.modified - a.modified);
    const read = recent.slice(0, readLimit);
    const counted = await mapLimit(read, 8, (o) => countLines(s3, bucket, o.key));
    const sum = counted.reduce((a, c) => ({ ok: a.ok + c.ok, failed: a.failed + c.failed }), {
      ok: 0,
      failed: 0,
    });
    const readResults = sum.ok + sum.failed;
    const estimated = read.length < recent.length;
    const readBytes = read.reduce((a, o) => a + o.size, 0);
    const allBytes = recent.reduce((a, o) => a + o.size, 0);
    const results =
      estimated && readBytes > 0 ? Math.round((readResults * allBytes) / readBytes) : readResults;
    return {
      since: options.since.toISOString(),
      batches: recent.length,
      results,
      ...(estimated ? {} : sum),
      estimated,
      truncated,
      models,
    };
  } catch (error) {
    throw toLabelerError(error, `listing s3://${bucket}/${RESULTS_PREFIX}/`);
  }
}

async function listModelPrefixes(s3: S3Client, bucket: string): Promise<string[]> {
  const models: string[] = [];
  for await (const page of listPages(s3, { bucket, prefix: `${RESULTS_PREFIX}/`, delimiter: '/' })) {
    for (const p of page.prefixes) {
      const match = /model=([^/]+)\/$/.exec(p);
      if (match?.[1]) models.push(match[1]);
    }
  }
  return models;
}

async function countLines(
  s3: S3Client,
  bucket: string,
  key: string,
): Promise<{ ok: number; failed: number }> {
  const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const text = (await response.Body?.transformToString()) ?? '';
  let ok = 0;
  let failed = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      if ((JSON.parse(line) as { status?: string }).status === 'ok') ok++;
      else failed++;
    } catch {
      failed++;
    }
  }
  return { ok, failed };
}
