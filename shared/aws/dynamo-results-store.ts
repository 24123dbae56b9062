import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
  QueryCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { LabelerError } from '../errors.ts';
import type { ImageResult, LabelHit, ModelRef, Page, ResultsStore } from '../labeling/results.ts';
import { imageId } from '../labeling/results.ts';
import type { Label } from '../model/classifier.ts';
import { LABELING, RESULTS_TABLE } from '../settings.ts';
import { isConditionCancel, outcomeItems } from './dynamo-jobs-store.ts';
import { toLabelerError } from './errors.ts';
import { paddedSequencer } from './s3-event.ts';

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

const { partitionKey: PK, sortKey: SK, labelIndex } = RESULTS_TABLE;

export function imagePk(bucket: string, key: string): string {
  return `img#${bucket}/${key}`;
}

export function modelSk(model: ModelRef): string {
  return `model#${model.id}@${model.version}`;
}

function rankSk(model: ModelRef, rank: number): string {
  return `${modelSk(model)}#top#${String(rank).padStart(2, '0')}`;
}

export function labelPk(model: ModelRef, label: string): string {
  return `${model.id}@${model.version}#${label}`;
}

/** Scores sort as fixed-width strings, so ">= s, best first" is a key condition. */
export function labelSk(score: number, bucket: string, key: string): string {
  return `${score.toFixed(6)}#${bucket}/${key}`;
}

/**
 * Results in one DynamoDB table: per (image, model) one result item, plus one small
 * index item per top-k label in the same partition, projected by the by-label GSI.
 * A result and its index items are written in one transaction, guarded by the
 * idempotency condition, so a duplicate delivery never writes a second result.
 */
export class DynamoResultsStore implements ResultsStore {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #indexMinScore: number;
  readonly #jobsTable: string | undefined;

  /**
   * @param indexMinScore labels scoring below it are stored but not indexed (LABELING.indexMinScore)
   * @param jobsTable where results of labeling jobs are counted, in the result's own transaction
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
    for (let start = 0; start < unique.length; start += 100) {
      let keys: Array<Record<string, unknown>> | undefined = unique
        .slice(start, start + 100)
        .map((i) => ({ [PK]: imagePk(i.bucket, i.key), [SK]: modelSk(model) }));
      for (let attempt = 0; keys && keys.length > 0; attempt++) {
        if (attempt > 0) await sleep(Math.min(1000, 50 * 2 ** attempt));
        if (attempt > 6) throw toLabelerError(new Error('unprocessed keys remained'), 'BatchGetItem');
        const response: BatchGetCommandOutput = await this.#db
          .send(
            new BatchGetCommand({ RequestItems: { [this.#table]: { Keys: keys, ConsistentRead: true } } }),
          )
          .catch((error: unknown) => {
            throw toLabelerError(error, 'DynamoDB BatchGetItem');
          });
        for (const item of response.Responses?.[this.#table] ?? []) {
          const result = fromItem(item);
          found.set(imageId(result), result);
        }
        keys = response.UnprocessedKeys?.[this.#table]?.Keys;
      }
    }
    return found;
  }

  async put(result: ImageResult, previous?: ImageResult): Promise<'written' | 'duplicate'> {
    const pk = imagePk(result.bucket, result.key);
    const items: TransactItem[] = [
      {
        Put: {
          TableName: this.#table,
          Item: toItem(result),
          ConditionExpression: 'attribute_not_exists(#pk) OR (#eTag <> :eTag AND #sequencer < :sequencer)',
          ExpressionAttributeNames: { '#pk': PK, '#eTag': 'eTag', '#sequencer': 'sequencer' },
          ExpressionAttributeValues: {
            ':eTag': result.eTag,
            ':sequencer': paddedSequencer(result.sequencer),
          },
        },
      },
    ];
    const indexed = this.#indexed(result);
    indexed.forEach((label, index) => {
      items.push({ Put: { TableName: this.#table, Item: labelItem(result, label, index + 1) } });
    });
    // A re-uploaded image with fewer indexed labels (or none, when it now fails) leaves no stale index items.
    for (let rank = indexed.length + 1; rank <= this.#indexed(previous).length; rank++) {
      items.push({ Delete: { TableName: this.#table, Key: { [PK]: pk, [SK]: rankSk(result.model, rank) } } });
    }
    // A job's result is counted in the same transaction (decision 0014): written <=> counted,
    // and a redelivery whose marker exists cancels the whole write.
    if (result.jobId && this.#jobsTable) {
      const outcome = result.status === 'ok' ? 'labeled' : 'failed';
      items.push(...outcomeItems(this.#jobsTable, result.jobId, result, outcome, result.error));
    }
    try {
      await this.#db.send(new TransactWriteCommand({ TransactItems: items }));
      return 'written';
    } catch (error) {
      if (isConditionCancel(error)) return 'duplicate';
      throw toLabelerError(error, 'DynamoDB TransactWriteItems');
    }
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

  async queryByLabel(query: {
    model: ModelRef;
    label: string;
    minScore: number;
    limit: number;
    cursor?: string;
  }): Promise<Page<LabelHit>> {
    checkKeySize(labelPk(query.model, query.label), 'the model and label together');
    const response = await this.#db
      .send(
        new QueryCommand({
          TableName: this.#table,
          IndexName: labelIndex.name,
          KeyConditionExpression: '#p = :p AND #s >= :s',
          ExpressionAttributeNames: { '#p': labelIndex.partitionKey, '#s': labelIndex.sortKey },
          ExpressionAttributeValues: {
            ':p': labelPk(query.model, query.label),
            ':s': query.minScore.toFixed(6),
          },
          ScanIndexForward: false,
          Limit: query.limit,
          ...(query.cursor ? { ExclusiveStartKey: decodeCursor(query.cursor, query) } : {}),
        }),
      )
      .catch((error: unknown) => {
        throw toLabelerError(error, 'DynamoDB Query by-label');
      });
    const items = (response.Items ?? []).map((item) => ({
      bucket: String(item.bucket),
      key: String(item.key),
      label: String(item.label),
      score: Number(item.score),
      rank: Number(item.rank),
    }));
    return response.LastEvaluatedKey ? { items, cursor: encodeCursor(response.LastEvaluatedKey) } : { items };
  }
}

function toItem(r: ImageResult): Record<string, unknown> {
  return {
    [PK]: imagePk(r.bucket, r.key),
    [SK]: modelSk(r.model),
    type: 'result',
    bucket: r.bucket,
    key: r.key,
    eTag: r.eTag,
    size: r.size,
    sequencer: paddedSequencer(r.sequencer),
    modelId: r.model.id,
    modelVersion: r.model.version,
    status: r.status,
    labels: r.labels.map((l) => ({ label: l.label, score: l.score })),
    ...(r.error ? { errorCode: r.error.code, errorMessage: r.error.message } : {}),
    ...(r.width ? { width: r.width, height: r.height, format: r.format } : {}),
    ...(r.jobId ? { jobId: r.jobId } : {}),
    timings: r.timings,
    labeledAt: r.labeledAt,
  };
}

function labelItem(r: ImageResult, label: Label, rank: number): Record<string, unknown> {
  return {
    [PK]: imagePk(r.bucket, r.key),
    [SK]: rankSk(r.model, rank),
    type: 'label',
    [labelIndex.partitionKey]: labelPk(r.model, label.label),
    [labelIndex.sortKey]: labelSk(label.score, r.bucket, r.key),
    bucket: r.bucket,
    key: r.key,
    label: label.label,
    score: label.score,
    rank,
  };
}

function fromItem(item: Record<string, unknown>): ImageResult {
  const labels = (item.labels as Label[] | undefined) ?? [];
  return {
    bucket: String(item.bucket),
    key: String(item.key),
    eTag: String(item.eTag),
    size: Number(item.size ?? 0),
    sequencer: String(item.sequencer ?? '0'),
    model: { id: String(item.modelId), version: String(item.modelVersion) },
    status: item.status === 'ok' ? 'ok' : 'failed',
    labels: labels.map((l) => ({ label: String(l.label), score: Number(l.score) })),
    ...(item.errorCode
      ? { error: { code: String(item.errorCode), message: String(item.errorMessage ?? '') } }
      : {}),
    ...(item.width
      ? { width: Number(item.width), height: Number(item.height), format: String(item.format) }
      : {}),
    ...(item.jobId ? { jobId: String(item.jobId) } : {}),
    timings: item.timings as ImageResult['timings'],
    labeledAt: String(item.labeledAt),
  };
}

/** DynamoDB refuses a partition key over 2048 bytes with a ValidationException; refuse it first, as the caller's error. */
const MAX_PARTITION_KEY_BYTES = 2048;

function checkKeySize(partitionKey: string, what: string): void {
  const bytes = Buffer.byteLength(partitionKey, 'utf8');
  if (bytes > MAX_PARTITION_KEY_BYTES) {
    throw new LabelerError(
      'query/bad-request',
      `${what} are ${bytes} bytes long; DynamoDB keys hold at most ${MAX_PARTITION_KEY_BYTES}, so nothing is stored under them`,
    );
  }
}

const CURSOR_KEYS = [PK, SK, labelIndex.partitionKey, labelIndex.sortKey].sort();

function encodeCursor(key: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/**
 * A cursor is the LastEvaluatedKey of a by-label page. It is checked against the key
 * schema and against the query it is passed with (same model and label, a score the
 * query's floor admits), so that DynamoDB never sees a start key it would refuse: a
 * client can only move within results its own query reads anyway.
 */
function decodeCursor(
  cursor: string,
  query: { model: ModelRef; label: string; minScore: number },
): Record<string, unknown> {
  const refuse = (why: string): never => {
    throw new LabelerError(
      'query/bad-cursor',
      `the cursor is not one this query returned (${why}); pass back the "cursor" of the previous page unchanged`,
    );
  };
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) refuse('not base64url');
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    refuse('not JSON');
  }
  if (typeof key !== 'object' || key === null || Array.isArray(key)) return refuse('not a key');
  const fields = key as Record<string, unknown>;
  const names = Object.keys(fields).sort();
  if (names.length !== CURSOR_KEYS.length || names.some((n, i) => n !== CURSOR_KEYS[i])) refuse('not a key');
  if (Object.values(fields).some((v) => typeof v !== 'string')) refuse('not a key');
  const {
    [PK]: pk,
    [SK]: sk,
    [labelIndex.partitionKey]: lpk,
    [labelIndex.sortKey]: lsk,
  } = fields as Record<string, string>;
  if (lpk !== labelPk(query.model, query.label)) refuse('it belongs to another label or model');
  const score = /^(\d\.\d{6})#(.+)$/.exec(lsk ?? '');
  if (!score?.[1] || score[1] < query.minScore.toFixed(6)) refuse("it is outside this query's scores");
  if (!pk?.startsWith('img#') || `img#${score?.[2]}` !== pk) refuse('not a key');
  if (
    !/^#top#\d{2}$/.test(sk?.slice(modelSk(query.model).length) ?? '') ||
    !sk?.startsWith(modelSk(query.model))
  )
    refuse('not a key');
  return fields;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
