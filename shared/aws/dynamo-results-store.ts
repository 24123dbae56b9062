import { createHash } from 'node:crypto';
import {
  type DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { CODE } from '../error-codes.ts';
import { errorMessage, LabelerError, TransientError } from '../errors.ts';
import { topOfResult } from '../labeling/drift.ts';
import { mapLimit } from '../labeling/image-labeler.ts';
import type { JobOutcome } from '../labeling/jobs.ts';
import { resultAttributes, resultFromAttributes } from '../labeling/result-contract.ts';
import type {
  ImageResult,
  LabelHit,
  ModelRef,
  Page,
  PutOutcome,
  ResultsStore,
  ResultWrite,
} from '../labeling/results.ts';
import { imageId } from '../labeling/results.ts';
import { paddedSequencer } from '../labeling/s3-event.ts';
import type { Label } from '../model/classifier.ts';
import { LABELING, RESULTS_TABLE } from '../settings.ts';
import { BATCH_GET_KEYS, batchGetAll } from './batch-get.ts';
import { addToCounter, isConditionCancel, putMarker, shardPk, takeBack } from './dynamo-jobs-store.ts';
import { toLabelerError } from './errors.ts';

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

const { partitionKey: PK, sortKey: SK, labelIndex, rank2Index } = RESULTS_TABLE;

/** The indexes of a result's ranks (decision 0027): rank 1 in the by-label index, rank 2 in by-label-2. */
const RANK_INDEXES = [labelIndex, rank2Index] as const;

/**
 * Results read from items written before decision 0027, whose index lives in items of their
 * own (`#top#NN`): a rewrite deletes those items in the same transaction.
 */
const SEPARATE_INDEX = new WeakSet<ImageResult>();

export function imagePk(bucket: string, key: string): string {
  return `img#${bucket}/${key}`;
}

export function modelSk(model: ModelRef): string {
  return `model#${model.id}@${model.version}`;
}

function rankSk(model: ModelRef, rank: number): string {
  return `${modelSk(model)}#top#${String(rank).padStart(2, '0')}`;
}

/** What a label query reads: one model's index items for one label, over every shard. */
function labelOf(model: ModelRef, label: string): string {
  return `${model.id}@${model.version}#${label}`;
}

/**
 * The index key of one shard of a label: a single-label dataset writes its index items
 * over `labelIndex.shards` keys instead of one hot key (docs/decisions/0011).
 */
export function labelPk(model: ModelRef, label: string, shard: number): string {
  return `${labelOf(model, label)}#${shard}`;
}

/**
 * The shard of an image's index items: a hash of the image, so it is the same in every
 * process and on every re-upload, and a label's images spread evenly over the shards.
 */
export function labelShard(bucket: string, key: string): number {
  return shardOfHash(sha256(`${bucket}/${key}`));
}

/** `path` ends a labelSk: `bucket/key`, or `#sha256/<hex>` for an image too long to be named there. */
function shardOfPath(path: string): number {
  const hashed = HASHED_PATH.exec(path);
  return shardOfHash(hashed?.[1] ? Buffer.from(hashed[1], 'hex') : sha256(path));
}

function shardOfHash(digest: Buffer): number {
  return digest.readUInt32BE(0) % labelIndex.shards;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** DynamoDB's limit on a sort key, the by-label index's included. */
const MAX_SORT_KEY_BYTES = 1024;
/** What precedes the image in a labelSk: a score of fixed width and `#` (`0.970000#`). */
const SCORE_PREFIX_BYTES = 9;
/** A bucket name never holds `#`, so no `bucket/key` path reads like this. */
const HASHED_PATH = /^#sha256\/([0-9a-f]{64})$/;

/**
 * How a labelSk names its image: `bucket/key`, or, when that is too long for a sort key
 * (S3 keys reach 1,024 bytes; a labelSk holds 1,024 with its score), `#sha256/<hex of
 * bucket/key>`. Deterministic, so a redelivery writes the same index items; every image
 * that fits keeps the labelSk it always had (decision 0026). The index item carries
 * `bucket` and `key` themselves either way.
 */
export function indexPath(bucket: string, key: string): string {
  const path = `${bucket}/${key}`;
  if (Buffer.byteLength(path, 'utf8') <= MAX_SORT_KEY_BYTES - SCORE_PREFIX_BYTES) return path;
  return `#sha256/${sha256(path).toString('hex')}`;
}

/** Scores sort as fixed-width strings, so ">= s, best first" is a key condition. */
export function labelSk(score: number, bucket: string, key: string): string {
  return `${score.toFixed(6)}#${indexPath(bucket, key)}`;
}

/**
 * Results in one DynamoDB table: per (image, model) one result item carrying its index keys
 * (decision 0027), written by one Put guarded by the idempotency condition, so a duplicate
 * delivery never writes a second result; a job's results are counted after their writes.
 */
export class DynamoResultsStore implements ResultsStore {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #indexMinScore: number;
  readonly #jobsTable: string | undefined;

  /**
   * @param indexMinScore labels scoring below it are stored but not indexed (LABELING.indexMinScore)
   * @param jobsTable where results of labeling jobs are counted (a counter ADD, then a marker per image)
   */
  constructor(
    db: DynamoDBDocumentClient,
    tableName: string,
    indexMinScore: number = LABELING.indexMinScore,
    jobsTable?: string,
  ) {
    this.#db = db;
    this.#table = tableName;
    this.#indexMinScore = indexMinScore;
    this.#jobsTable = jobsTable;
  }

  /** The lowest score a label query can ask for: lower ones are not indexed. */
  get indexMinScore(): number {
    return this.#indexMinScore;
  }

  #indexed(result: ImageResult | undefined): readonly Label[] {
    return (result?.labels ?? []).filter((l) => l.score >= this.#indexMinScore);
  }

  async findExisting(
    images: ReadonlyArray<{ bucket: string; key: string }>,
    model: ModelRef,
  ): Promise<Map<string, ImageResult>> {
    const found = new Map<string, ImageResult>();
    const unique = [...new Map(images.map((i) => [imageId(i), i])).values()];
    for (let start = 0; start < unique.length; start += BATCH_GET_KEYS) {
      const keys = unique
        .slice(start, start + BATCH_GET_KEYS)
        .map((i) => ({ [PK]: imagePk(i.bucket, i.key), [SK]: modelSk(model) }));
      const items = await batchGetAll(this.#db, this.#table, keys, 'BatchGetItem', () =>
        toLabelerError(new Error('unprocessed keys remained'), 'BatchGetItem'),
      );
      for (const item of items) {
        const result = fromItem(item);
        if (item.indexOnItem !== true) SEPARATE_INDEX.add(result);
        found.set(imageId(result), result);
      }
    }
    return found;
  }

  async put(result: ImageResult, previous?: ImageResult, relabel = false): Promise<PutOutcome> {
    const [outcome] = await this.putAll([{ result, previous, relabel }]);
    if (outcome?.status === 'fulfilled') return outcome.value;
    throw outcome?.reason ?? new Error('the results store gave no outcome');
  }

  /** One result's write: a conditional Put, or with an older layout's index items a transaction deleting them. */
  async #write(w: ResultWrite): Promise<PutOutcome> {
    const items = this.#itemsOf(w);
    const only = items.length === 1 ? items[0]?.Put : undefined;
    if (only) {
      // One item holds the result and its index entries: a conditional Put, half a transaction's units.
      try {
        await this.#db.send(new PutCommand(only as ConstructorParameters<typeof PutCommand>[0]));
        return 'written';
      } catch (error) {
        if ((error as { name?: string }).name === 'ConditionalCheckFailedException') return 'duplicate';
        throw toLabelerError(error, 'DynamoDB PutItem');
      }
    }
    try {
      await this.#db.send(new TransactWriteCommand({ TransactItems: items }));
      return 'written';
    } catch (error) {
      if (isConditionCancel(error)) return 'duplicate';
      throw toLabelerError(error, 'DynamoDB TransactWriteItems');
    }
  }

  /**
   * Writes each result with its own conditional Put, several at once, the same image twice
   * in a batch in order so the newer one wins; then counts the job results written
   * (decision 0027): per job one counter ADD for the batch, then each image's (job, image)
   * marker. An image whose marker exists (its job gave up on it, and a redrive labeled it
   * now) keeps its result and is not counted again. A result written whose count could not
   * be recorded is reported rejected: its message comes back, finds the job's own result and
   * counts it then (classify-records), so it is never lost.
   */
  async putAll(writes: readonly ResultWrite[]): Promise<Array<PromiseSettledResult<PutOutcome>>> {
    const settled: Array<PromiseSettledResult<PutOutcome>> = new Array(writes.length);
    const byImage = new Map<string, number[]>();
    writes.forEach((w, i) => {
      const id = imagePk(w.result.bucket, w.result.key);
      byImage.set(id, [...(byImage.get(id) ?? []), i]);
    });
    await mapLimit([...byImage.values()], 8, async (ordered) => {
      for (const i of ordered) {
        settled[i] = await this.#write(writes[i] as ResultWrite).then(
          (value) => ({ status: 'fulfilled', value }),
          (reason: unknown) => ({ status: 'rejected', reason }),
        );
      }
    });
    const jobsTable = this.#jobsTable;
    if (!jobsTable) return settled;
    const byJob = new Map<string, number[]>();
    writes.forEach((w, i) => {
      const s = settled[i];
      if (!w.result.jobId || s?.status !== 'fulfilled' || s.value !== 'written') return;
      byJob.set(w.result.jobId, [...(byJob.get(w.result.jobId) ?? []), i]);
    });
    for (const [jobId, members] of byJob) {
      await this.#count(jobsTable, jobId, members, writes, settled);
    }
    return settled;
  }

  async #count(
    jobsTable: string,
    jobId: string,
    members: readonly number[],
    writes: readonly ResultWrite[],
    settled: Array<PromiseSettledResult<PutOutcome>>,
  ): Promise<void> {
    const outcomeOf = (i: number): JobOutcome =>
      (writes[i] as ResultWrite).result.status === 'ok' ? 'labeled' : 'failed';
    const tally = (of: readonly number[]): Map<JobOutcome, number> => {
      const counts = new Map<JobOutcome, number>();
      for (const i of of) counts.set(outcomeOf(i), (counts.get(outcomeOf(i)) ?? 0) + 1);
      return counts;
    };
    // The batch's ADD goes to one shard: the counters are summed, any shard may hold any image.
    const first = (writes[members[0] as number] as ResultWrite).result;
    const shard = shardPk(jobId, first);
    try {
      await addToCounter(this.#db, jobsTable, shard, tally(members));
    } catch (reason) {
      for (const i of members) settled[i] = { status: 'rejected', reason: uncounted(reason) };
      return;
    }
    const refused: number[] = [];
    await mapLimit(members, 8, async (i) => {
      const { result } = writes[i] as ResultWrite;
      try {
        const marked = await putMarker(
          this.#db,
          jobsTable,
          jobId,
          result,
          outcomeOf(i),
          result.error,
          topOfResult(result),
        );
        if (!marked) refused.push(i);
      } catch (reason) {
        settled[i] = { status: 'rejected', reason: uncounted(reason) };
      }
    });
    if (refused.length > 0) await takeBack(this.#db, jobsTable, shard, tally(refused));
  }

  /**
   * The index keys a result item carries (decision 0027): its rank-1 and rank-2 labels, when
   * they score at least indexMinScore, each under its own sparse index; `indexOnItem` tells
   * this item from one written before, whose index is in items of their own.
   */
  #indexKeys(result: ImageResult): Record<string, unknown> {
    const keys: Record<string, unknown> = { indexOnItem: true };
    const shard = labelShard(result.bucket, result.key);
    this.#indexed(result)
      .slice(0, RANK_INDEXES.length)
      .forEach((label, i) => {
        const index = RANK_INDEXES[i] as (typeof RANK_INDEXES)[number];
        keys[index.partitionKey] = labelPk(result.model, label.label, shard);
        keys[index.sortKey] = labelSk(label.score, result.bucket, result.key);
      });
    return keys;
  }

  /** One result's items: the result with its index keys, and deletes of an older layout's index items. */
  #itemsOf({ result, previous, relabel }: ResultWrite): TransactItem[] {
    const pk = imagePk(result.bucket, result.key);
    // A job's message has no S3 sequencer ('0'): over a result of other content (mode `stale`
    // after a re-upload) it writes if that result is still there, keeping its sequencer, so
    // an upload's newer event wins and an older one arriving late still loses.
    const replaces = result.jobId !== undefined && previous !== undefined && previous.eTag !== result.eTag;
    const items: TransactItem[] = [
      {
        Put: {
          TableName: this.#table,
          Item: {
            ...toItem(result),
            ...this.#indexKeys(result),
            // A relabel keeps the upload's sequencer, so an older event arriving late still loses.
            ...((relabel || replaces) && previous ? { sequencer: paddedSequencer(previous.sequencer) } : {}),
          },
          ...(relabel && result.jobId
            ? {
                // Mode `all` (decision 0014): over the same content, unless this job wrote it already.
                ConditionExpression:
                  'attribute_not_exists(#pk) OR (#eTag = :eTag AND (attribute_not_exists(#jobId) OR #jobId <> :jobId))',
                ExpressionAttributeNames: { '#pk': PK, '#eTag': 'eTag', '#jobId': 'jobId' },
                ExpressionAttributeValues: { ':eTag': result.eTag, ':jobId': result.jobId },
              }
            : replaces && previous
              ? {
                  ConditionExpression: 'attribute_not_exists(#pk) OR #eTag = :previous',
                  ExpressionAttributeNames: { '#pk': PK, '#eTag': 'eTag' },
                  ExpressionAttributeValues: { ':previous': previous.eTag },
                }
              : {
                  ConditionExpression:
                    'attribute_not_exists(#pk) OR (#eTag <> :eTag AND #sequencer < :sequencer)',
                  ExpressionAttributeNames: { '#pk': PK, '#eTag': 'eTag', '#sequencer': 'sequencer' },
                  ExpressionAttributeValues: {
                    ':eTag': result.eTag,
                    ':sequencer': paddedSequencer(result.sequencer),
                  },
                }),
        },
      },
    ];
    // Written before decision 0027, its index is in items of their own: they go with this write.
    if (previous && SEPARATE_INDEX.has(previous)) {
      for (let rank = 1; rank <= this.#indexed(previous).length; rank++) {
        items.push({
          Delete: { TableName: this.#table, Key: { [PK]: pk, [SK]: rankSk(result.model, rank) } },
        });
      }
    }
    return items;
  }

  async getByImage(bucket: string, key: string): Promise<ImageResult[]> {
    checkKeySize(imagePk(bucket, key), 'the bucket and key together');
    const response = await this.#db
      .send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :model)',
          FilterExpression: '#type = :result',
          ExpressionAttributeNames: { '#pk': PK, '#sk': SK, '#type': 'type' },
          ExpressionAttributeValues: { ':pk': imagePk(bucket, key), ':model': 'model#', ':result': 'result' },
          ConsistentRead: true,
        }),
      )
      .catch((error: unknown) => {
        throw toLabelerError(error, 'DynamoDB Query');
      });
    return (response.Items ?? []).map(fromItem);
  }

  /**
   * One paginated Query per shard of the label's index key, run in parallel, merged by
   * labelSk (score, then image) best first. Each shard reads at most `limit` items, so
   * the merge always has every shard's next candidate at hand; the cursor records, per
   * shard, the last item this page took from it (or that it is exhausted), so the next
   * page resumes every shard exactly where the merge left it: nothing skipped or repeated.
   */
  async queryByLabel(query: LabelQuery): Promise<Page<LabelHit>> {
    checkKeySize(labelPk(query.model, query.label, labelIndex.shards - 1), 'the model and label together');
    const from: ShardPosition[] = query.cursor
      ? decodeCursor(query.cursor, query)
      : Array.from({ length: labelIndex.shards }, () => null);
    const read = await Promise.all(
      from.map((position, shard) =>
        position === 'end' ? { items: [], more: false } : this.#readShard(query, shard, position),
      ),
    );

    const taken = read.map(() => 0);
    const page: Array<Record<string, unknown>> = [];
    while (page.length < query.limit) {
      let best = -1;
      read.forEach((shard, s) => {
        const candidate = shard.items[taken[s] ?? 0];
        const leader = read[best]?.items[taken[best] ?? 0];
        if (candidate && (!leader || compareBytes(sortKeyOf(candidate), sortKeyOf(leader)) > 0)) best = s;
      });
      const item = read[best]?.items[taken[best] ?? 0];
      if (!item) break;
      page.push(item);
      taken[best] = (taken[best] ?? 0) + 1;
    }

    const next: ShardPosition[] = read.map((shard, s) => {
      const count = taken[s] ?? 0;
      if (count === shard.items.length && !shard.more) return 'end';
      const last = shard.items[count - 1];
      return last ? [sortKeyOf(last), Number(last.rank)] : (from[s] ?? null);
    });
    const items = page.map((item) => ({
      bucket: String(item.bucket),
      key: String(item.key),
      label: String(item.label),
      score: Number(item.score),
      rank: Number(item.rank),
    }));
    return next.every((p) => p === 'end')
      ? { items }
      : { items, cursor: encodeCursor(labelOf(query.model, query.label), next) };
  }

  /**
   * Up to `limit` index entries of one shard after `after`, best first, from every rank's
   * index merged; `more` when one of them has not reached its end. A labelSk names one
   * image, and an image holds a label at one rank only, so within a shard it is unique
   * over the indexes too, and one position resumes them all.
   */
  async #readShard(
    query: LabelQuery,
    shard: number,
    after: ShardPosition,
  ): Promise<{ items: Array<Record<string, unknown>>; more: boolean }> {
    const read = await Promise.all(
      RANK_INDEXES.map((index, i) => this.#readIndexShard(query, shard, after, index, i + 1)),
    );
    const items = read
      .flatMap((r) => r.items)
      .sort((a, b) => compareBytes(sortKeyOf(b), sortKeyOf(a)))
      .slice(0, query.limit + 1);
    return {
      items: items.slice(0, query.limit),
      more: read.some((r) => r.more) || items.length > query.limit,
    };
  }

  /** One rank's index entries of one shard after `after`, as label hits keyed by `labelSk`. */
  async #readIndexShard(
    query: LabelQuery,
    shard: number,
    after: ShardPosition,
    index: (typeof RANK_INDEXES)[number],
    rank: number,
  ): Promise<{ items: Array<Record<string, unknown>>; more: boolean }> {
    const pk = labelPk(query.model, query.label, shard);
    const items: Array<Record<string, unknown>> = [];
    // The next page is the entries up to and including the last one taken, less that one.
    // (The labelSk alone cannot give DynamoDB a start key: a hashed one does not say the image's pk.)
    const last = Array.isArray(after) ? after[0] : undefined;
    let skipLast = last !== undefined;
    let startKey: Record<string, unknown> | undefined;
    do {
      const response = await this.#db
        .send(
          new QueryCommand({
            TableName: this.#table,
            IndexName: index.name,
            KeyConditionExpression:
              last === undefined ? '#p = :p AND #s >= :s' : '#p = :p AND #s BETWEEN :s AND :last',
            ExpressionAttributeNames: { '#p': index.partitionKey, '#s': index.sortKey },
            ExpressionAttributeValues: {
              ':p': pk,
              ':s': query.minScore.toFixed(6),
              ...(last === undefined ? {} : { ':last': last }),
            },
            ScanIndexForward: false,
            Limit: query.limit - items.length + (skipLast ? 1 : 0),
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        )
        .catch((error: unknown) => {
          throw toLabelerError(error, `DynamoDB Query ${index.name}`);
        });
      for (const item of response.Items ?? []) {
        const hit = hitOf(item, index, rank, query.label);
        // The last entry taken comes first if it is still there; if it is gone, nothing is skipped.
        const taken = skipLast && sortKeyOf(hit) === last;
        skipLast = false;
        if (!taken) items.push(hit);
      }
      startKey = response.LastEvaluatedKey;
    } while (startKey && items.length < query.limit);
    return { items: items.slice(0, query.limit), more: startKey !== undefined || items.length > query.limit };
  }
}

/**
 * A label hit from an index entry: an index item written before decision 0027 says its
 * label, score and rank; a result item's entry has them from its rank and labels.
 */
function hitOf(
  item: Record<string, unknown>,
  index: (typeof RANK_INDEXES)[number],
  rank: number,
  label: string,
): Record<string, unknown> {
  if (item.type === 'label') return item;
  const labels = (item.labels as Label[] | undefined) ?? [];
  return {
    [labelIndex.sortKey]: item[index.sortKey],
    bucket: item.bucket,
    key: item.key,
    label,
    score: Number(labels[rank - 1]?.score ?? 0),
    rank,
  };
}

interface LabelQuery {
  readonly model: ModelRef;
  readonly label: string;
  readonly minScore: number;
  readonly limit: number;
  readonly cursor?: string;
}

/**
 * Where a label query stands in one shard: `null` before its first item, `'end'` once
 * exhausted, else the labelSk and rank of the last item taken from it. The labelSk, unique
 * in its shard, is where the next page resumes (decision 0026); the rank completes the
 * item's name in the cursor, which keeps its shape.
 */
type ShardPosition = null | 'end' | [labelSk: string, rank: number];

function sortKeyOf(item: Record<string, unknown>): string {
  return String(item[labelIndex.sortKey]);
}

/** DynamoDB orders string keys by their UTF-8 bytes; JavaScript's `<` compares UTF-16 units, which differ above U+FFFF. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function toItem(r: ImageResult): Record<string, unknown> {
  return {
    [PK]: imagePk(r.bucket, r.key),
    [SK]: modelSk(r.model),
    type: 'result',
    ...resultAttributes(r),
    sequencer: paddedSequencer(r.sequencer),
  };
}

function fromItem(item: Record<string, unknown>): ImageResult {
  return resultFromAttributes(item);
}

/** DynamoDB refuses a partition key over 2048 bytes with a ValidationException; refuse it first, as the caller's error. */
const MAX_PARTITION_KEY_BYTES = 2048;

function checkKeySize(partitionKey: string, what: string): void {
  const bytes = Buffer.byteLength(partitionKey, 'utf8');
  if (bytes > MAX_PARTITION_KEY_BYTES) {
    throw new LabelerError(
      CODE.query.badRequest,
      `${what} are ${bytes} bytes long; DynamoDB keys hold at most ${MAX_PARTITION_KEY_BYTES}, so nothing is stored under them`,
    );
  }
}

const CURSOR_FIELDS = ['after', 'of'];
const MAX_RANK = 9999;

function encodeCursor(of: string, after: readonly ShardPosition[]): string {
  return Buffer.from(JSON.stringify({ of, after })).toString('base64url');
}

/**
 * A cursor names the label query it belongs to and, per shard, where that query stands.
 * It is checked against the query it is passed with (same model and label, one position
 * per shard, scores the query's floor admits, each image in the shard it hashes to), so
 * that DynamoDB never sees a start key it would refuse: a client can only move within
 * results its own query reads anyway.
 */
function decodeCursor(
  cursor: string,
  query: { model: ModelRef; label: string; minScore: number },
): ShardPosition[] {
  const refuse = (why: string): never => {
    throw new LabelerError(
      CODE.query.badCursor,
      `the cursor is not one this query returned (${why}); pass back the "cursor" of the previous page unchanged`,
    );
  };
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) refuse('not base64url');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    refuse('not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return refuse('not a cursor');
  const fields = parsed as Record<string, unknown>;
  const names = Object.keys(fields).sort();
  if (names.length !== CURSOR_FIELDS.length || names.some((n, i) => n !== CURSOR_FIELDS[i])) {
    refuse('not a cursor');
  }
  if (fields.of !== labelOf(query.model, query.label)) refuse('it belongs to another label or model');
  const after = fields.after;
  if (!Array.isArray(after) || after.length !== labelIndex.shards) {
    return refuse(`not one position for each of ${labelIndex.shards} shards`);
  }
  return after.map((position: unknown, shard): ShardPosition => {
    if (position === null || position === 'end') return position;
    if (!Array.isArray(position) || position.length !== 2) return refuse('not a position');
    const [sk, rank] = position as unknown[];
    if (typeof sk !== 'string' || !Number.isInteger(rank) || Number(rank) < 1 || Number(rank) > MAX_RANK) {
      return refuse('not a position');
    }
    const parts = /^(\d\.\d{6})#([^/]+\/.+)$/s.exec(sk);
    if (!parts?.[1] || !parts[2]) return refuse('not a position');
    if (parts[1] < query.minScore.toFixed(6)) refuse("it is outside this query's scores");
    if (shardOfPath(parts[2]) !== shard) refuse('an image in a shard it does not hash to');
    return [sk, Number(rank)];
  });
}

/**
 * A result stored but not counted goes back to the queue whatever the cause: its redelivery
 * counts it (decision 0027). Never permanent, which would make it a failed result instead.
 */
function uncounted(reason: unknown): TransientError {
  const code = reason instanceof LabelerError ? reason.code : CODE.internal.unexpected;
  return new TransientError(
    code,
    `the result is stored but its job count is not: ${errorMessage(reason)}`,
    reason,
  );
}
