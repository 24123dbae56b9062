import { createHash, randomUUID } from 'node:crypto';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  type PutCommandInput,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import {
  type DriftMetric,
  NO_TALLY,
  scheduleDrift,
  summarize,
  type Top1,
  type Top1Tally,
  tallyOf,
} from '../labeling/drift.ts';
import {
  firstRecountStep,
  NO_COUNTS,
  type OutcomeCounts,
  type RecountMessage,
} from '../labeling/finish-job.ts';
import type {
  Job,
  JobCounts,
  JobLedger,
  JobMode,
  JobOutcome,
  JobRequest,
  JobSettings,
  JobStatus,
  JobTarget,
  JobUsage,
  LabelSummary,
} from '../labeling/jobs.ts';
import { JOB_USAGE_FIELDS, jobTotalDone } from '../labeling/jobs.ts';
import type { JobSample } from '../labeling/sample.ts';
import type { JobModel } from '../labeling/stack-models.ts';
import { JOBS, JOBS_TABLE } from '../settings.ts';
import { batchGetAll } from './batch-get.ts';
import { toLabelerError } from './errors.ts';

const { partitionKey: PK, sortKey: SK, listIndex } = JOBS_TABLE;
const JOB_SK = 'job';
const COUNT_SK = 'count';
const LIST_PK = 'jobs';
const OUTCOMES: readonly JobOutcome[] = ['labeled', 'failed', 'skipped', 'cancelled'];
/** Usage fields on the counter items, apart from the outcomes' counts. */
const USAGE_PREFIX = 'usage_';

/** The job item as stored: the public Job less the counts, plus planning state. */
export interface JobRecord extends Omit<Job, keyof JobCounts> {
  readonly total: number;
  /** Plan steps recorded so far; step N is applied only when this equals N. */
  readonly pagesPlanned: number;
  /** Whether the first plan step was sent (a retried start resends it otherwise). */
  readonly planStarted: boolean;
  readonly idempotencyKey?: string;
  /** The counts from the markers, recorded when the job finished (decision 0027): exact, for good. */
  readonly finalCounts?: Omit<JobCounts, 'total'>;
}

/** `j-` + 24 hex of sha256(key): the same key always names the same job. */
export function jobIdFor(idempotencyKey: string | undefined): string {
  if (idempotencyKey === undefined) return `j-${randomUUID().replace(/-/g, '').slice(0, 24)}`;
  return `j-${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 24)}`;
}

function jobPk(jobId: string): string {
  return `job#${jobId}`;
}

function imageHash(image: { bucket: string; key: string }): string {
  return createHash('sha256').update(`${image.bucket}/${image.key}`).digest('hex');
}

/** The shard of an image's outcome: spread by a hash of the image, stable across deliveries. */
export function shardPk(jobId: string, image: { bucket: string; key: string }): string {
  return `${jobPk(jobId)}#${Number.parseInt(imageHash(image).slice(0, 8), 16) % JOBS.counterShards}`;
}

/** The marker of one image's outcome for a job: its Put is refused when the outcome is already recorded. */
function markerPut(
  jobsTable: string,
  jobId: string,
  image: { bucket: string; key: string },
  outcome: JobOutcome,
  error?: { code: string; message: string },
  top?: Top1,
): PutCommandInput {
  return {
    TableName: jobsTable,
    Item: {
      [PK]: shardPk(jobId, image),
      [SK]: `img#${imageHash(image).slice(0, 40)}`,
      bucket: image.bucket,
      key: image.key,
      outcome,
      ...(error ? { error } : {}),
      // The top-1 label and score ride on the marker (decision 0039): the finishing recount
      // reads the markers anyway, so the histogram is exact under redelivery like the counts.
      ...(top && outcome === 'labeled' ? { topLabel: top.label, topScore: top.score } : {}),
    },
    ConditionExpression: 'attribute_not_exists(#pk)',
    ExpressionAttributeNames: { '#pk': PK },
  };
}

/**
 * Counts one image's outcome for a job exactly once without a transaction (decision 0027):
 * the shard counter's ADD first, then the (job, image) marker, whose Put is refused when the
 * image already has an outcome; then the ADD is taken back. A crash or an unanswered request
 * between the two leaves the counters over, never under: they only tell when the job may be
 * done, and `checkCompletion` counts the markers themselves then. Returns false when the
 * image already had an outcome.
 */
export async function countOutcome(
  db: DynamoDBDocumentClient,
  jobsTable: string,
  jobId: string,
  image: { bucket: string; key: string },
  outcome: JobOutcome,
  error?: { code: string; message: string },
  top?: Top1,
): Promise<boolean> {
  const shard = shardPk(jobId, image);
  await addToCounter(db, jobsTable, shard, new Map([[outcome, 1]]));
  if (await putMarker(db, jobsTable, jobId, image, outcome, error, top)) return true;
  await takeBack(db, jobsTable, shard, new Map([[outcome, 1]]));
  return false;
}

/** The marker's Put: true when written, false when the image already had an outcome. */
export async function putMarker(
  db: DynamoDBDocumentClient,
  jobsTable: string,
  jobId: string,
  image: { bucket: string; key: string },
  outcome: JobOutcome,
  error?: { code: string; message: string },
  top?: Top1,
): Promise<boolean> {
  try {
    await db.send(new PutCommand(markerPut(jobsTable, jobId, image, outcome, error, top)));
    return true;
  } catch (failure) {
    if ((failure as { name?: string }).name === 'ConditionalCheckFailedException') return false;
    throw toLabelerError(failure, 'DynamoDB PutItem (job outcome)');
  }
}

/** One shard counter's ADD for several outcomes at once: one write for a batch's images. */
export async function addToCounter(
  db: DynamoDBDocumentClient,
  jobsTable: string,
  shard: string,
  counts: ReadonlyMap<JobOutcome, number>,
): Promise<void> {
  const names: Record<string, string> = {};
  const values: Record<string, number> = {};
  const adds: string[] = [];
  [...counts].forEach(([outcome, n], i) => {
    names[`#n${i}`] = outcome;
    values[`:n${i}`] = n;
    adds.push(`#n${i} :n${i}`);
  });
  if (adds.length === 0) return;
  try {
    await db.send(
      new UpdateCommand({
        TableName: jobsTable,
        Key: { [PK]: shard, [SK]: COUNT_SK },
        UpdateExpression: `ADD ${adds.join(', ')}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  } catch (failure) {
    throw toLabelerError(failure, 'DynamoDB UpdateItem (job counter)');
  }
}

/**
 * Takes back the ADD of outcomes whose markers were refused. If it fails the counters stay
 * over, which only makes `checkCompletion` count the markers sooner: nothing to retry.
 */
export async function takeBack(
  db: DynamoDBDocumentClient,
  jobsTable: string,
  shard: string,
  counts: ReadonlyMap<JobOutcome, number>,
): Promise<void> {
  const negative = new Map([...counts].filter(([, n]) => n > 0).map(([o, n]) => [o, -n] as const));
  await addToCounter(db, jobsTable, shard, negative).catch(() => undefined);
}

/** Whether a failed transaction was cancelled by a condition (a duplicate), not a fault. */
export function isConditionCancel(error: unknown): boolean {
  const reasons = (error as { CancellationReasons?: Array<{ Code?: string }> }).CancellationReasons;
  return (reasons ?? []).some((r) => r.Code === 'ConditionalCheckFailed');
}

export interface JobMarker {
  readonly bucket: string;
  readonly key: string;
  readonly outcome: JobOutcome;
  readonly error?: { code: string; message: string };
  readonly top?: Top1;
}

/** A marker item's top-1 label and score, when it has them. */
function topOf(item: Record<string, unknown>): Top1 | undefined {
  return item.outcome === 'labeled' && typeof item.topLabel === 'string' && typeof item.topScore === 'number'
    ? { label: item.topLabel, score: item.topScore }
    : undefined;
}

/** How a finished job's markers are recounted (decision 0027). */
export interface RecountOptions {
  /**
   * Sends a recount step to the plan queue. Without it every recount is inline (a process
   * with no plan queue to send to), as before the paged recount.
   */
  readonly sendRecount?: (message: RecountMessage) => Promise<void>;
  /** Jobs up to this many images are recounted inline. @default JOBS.inlineRecountMax */
  readonly inlineRecountMax?: number;
  /** Markers per recount page (tests: 2). @default DynamoDB's 1 MB page */
  readonly recountPageLimit?: number;
  /**
   * Where a finished scheduled job's divergence from its schedule's baseline goes (the
   * `LabelDrift` metric, decision 0039); without it the baseline is still kept, nothing sent.
   */
  readonly driftMetric?: DriftMetric;
}

const SCHEDULE_BASELINE_SK = 'baseline';

function schedulePk(schedule: string): string {
  return `sched#${schedule}`;
}

/** Jobs in one DynamoDB table: the job item, and per shard a counter and outcome markers. */
export class DynamoJobsStore implements JobLedger {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #now: () => Date;
  readonly #recount: RecountOptions;
  readonly #cache = new Map<string, { at: number; settings: JobSettings | undefined }>();

  constructor(
    db: DynamoDBDocumentClient,
    tableName: string,
    now: () => Date = () => new Date(),
    recount: RecountOptions = {},
  ) {
    this.#db = db;
    this.#table = tableName;
    this.#now = now;
    this.#recount = recount;
  }

  get tableName(): string {
    return this.#table;
  }

  async #send<T>(command: { input: unknown }, what: string): Promise<T> {
    try {
      return (await this.#db.send(command as never)) as T;
    } catch (error) {
      throw toLabelerError(error, `DynamoDB ${what}`);
    }
  }

  /** Writes the job item unless the job exists; returns the stored record and whether this call created it. */
  async create(
    request: JobRequest,
    model: JobModel,
    sample?: JobSample,
  ): Promise<{ record: JobRecord; created: boolean }> {
    const now = this.#now().toISOString();
    const record: JobRecord = {
      jobId: jobIdFor(request.idempotencyKey),
      status: 'planning',
      bucket: request.bucket,
      prefix: request.prefix,
      target: request.target,
      mode: request.mode,
      model,
      planningDone: false,
      createdAt: now,
      updatedAt: now,
      total: 0,
      pagesPlanned: 0,
      planStarted: false,
      ...(request.scheduleName ? { scheduleName: request.scheduleName } : {}),
      ...(request.targetReason ? { targetReason: request.targetReason } : {}),
      ...(sample ? { sample } : {}),
      ...(request.idempotencyKey ? { idempotencyKey: request.idempotencyKey } : {}),
    };
    try {
      await this.#db.send(
        new PutCommand({
          TableName: this.#table,
          Item: { [PK]: jobPk(record.jobId), [SK]: JOB_SK, listPk: LIST_PK, ...record },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': PK },
        }),
      );
      return { record, created: true };
    } catch (error) {
      if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') {
        throw toLabelerError(error, 'DynamoDB PutItem (job)');
      }
    }
    const existing = await this.load(record.jobId);
    if (!existing)
      throw new LabelerError(CODE.job.notFound, `job ${record.jobId} vanished`, { permanent: false });
    return { record: existing, created: false };
  }

  async load(jobId: string): Promise<JobRecord | undefined> {
    const response = await this.#send<{ Item?: Record<string, unknown> }>(
      new GetCommand({
        TableName: this.#table,
        Key: { [PK]: jobPk(jobId), [SK]: JOB_SK },
        ConsistentRead: true,
      }),
      'GetItem (job)',
    );
    return response.Item ? fromItem(response.Item) : undefined;
  }

  /** The job's counts: the sum of its shard counters (one BatchGet). */
  async counts(jobId: string): Promise<Omit<JobCounts, 'total'>> {
    return (await this.#counters(jobId)).counts;
  }

  /** The shard counters summed: the outcomes' counts, and the usage the workers added to them. */
  async #counters(jobId: string): Promise<{ counts: Omit<JobCounts, 'total'>; usage?: JobUsage }> {
    const sums = { labeled: 0, failed: 0, skipped: 0, cancelled: 0 };
    const usage = Object.fromEntries(JOB_USAGE_FIELDS.map((f) => [f, 0])) as Record<keyof JobUsage, number>;
    const keys = Array.from({ length: JOBS.counterShards }, (_, n) => ({
      [PK]: `${jobPk(jobId)}#${n}`,
      [SK]: COUNT_SK,
    }));
    const items = await batchGetAll(
      this.#db,
      this.#table,
      keys,
      'BatchGetItem (job counters)',
      () => new LabelerError(CODE.dynamodb.throttled, 'unprocessed keys remained', { permanent: false }),
    );
    for (const item of items) {
      for (const outcome of OUTCOMES) sums[outcome] += Number(item[outcome] ?? 0);
      for (const field of JOB_USAGE_FIELDS) usage[field] += Number(item[`${USAGE_PREFIX}${field}`] ?? 0);
    }
    return usage.invocations > 0 ? { counts: sums, usage } : { counts: sums };
  }

  /**
   * Adds one invocation's usage to a shard counter (decision 0035): an ADD like the counts',
   * on a shard picked at random so a big job's invocations spread over its counters.
   */
  async addUsage(jobId: string, usage: JobUsage): Promise<void> {
    const shard = `${jobPk(jobId)}#${Math.floor(Math.random() * JOBS.counterShards)}`;
    await this.#send(
      new UpdateCommand({
        TableName: this.#table,
        Key: { [PK]: shard, [SK]: COUNT_SK },
        UpdateExpression: `ADD ${JOB_USAGE_FIELDS.map((_, i) => `#u${i} :u${i}`).join(', ')}`,
        ExpressionAttributeNames: Object.fromEntries(
          JOB_USAGE_FIELDS.map((f, i) => [`#u${i}`, `${USAGE_PREFIX}${f}`]),
        ),
        ExpressionAttributeValues: Object.fromEntries(JOB_USAGE_FIELDS.map((f, i) => [`:u${i}`, usage[f]])),
      }),
      'UpdateItem (job usage)',
    );
  }

  async get(jobId: string): Promise<Job | undefined> {
    const record = await this.load(jobId);
    if (!record) return undefined;
    return toJob(record, await this.#counters(jobId));
  }

  async list(limit: number): Promise<Job[]> {
    const response = await this.#send<{ Items?: Array<Record<string, unknown>> }>(
      new QueryCommand({
        TableName: this.#table,
        IndexName: listIndex.name,
        KeyConditionExpression: '#p = :p',
        ExpressionAttributeNames: { '#p': listIndex.partitionKey },
        ExpressionAttributeValues: { ':p': LIST_PK },
        ScanIndexForward: false,
        Limit: limit,
      }),
      'Query (jobs by-created)',
    );
    const jobs: Job[] = [];
    for (const item of response.Items ?? []) {
      const record = fromItem(item);
      jobs.push(toJob(record, await this.#counters(record.jobId)));
    }
    return jobs;
  }

  async markPlanStarted(jobId: string): Promise<void> {
    await this.#send(
      new UpdateCommand({
        TableName: this.#table,
        Key: { [PK]: jobPk(jobId), [SK]: JOB_SK },
        UpdateExpression: 'SET planStarted = :t',
        ExpressionAttributeValues: { ':t': true },
      }),
      'UpdateItem (job plan started)',
    );
  }

  /**
   * Applies plan step `page`: adds its objects to the total, once. Returns false when the
   * step was already applied (a duplicate); throws a transient error when an earlier step
   * is not applied yet, so the message comes back after it.
   */
  async recordPlanned(jobId: string, page: number, added: number, done: boolean): Promise<boolean> {
    const now = this.#now().toISOString();
    try {
      await this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [PK]: jobPk(jobId), [SK]: JOB_SK },
          UpdateExpression: done
            ? 'SET pagesPlanned = :next, planningDone = :t, updatedAt = :now, #s = if_not_exists(#s, :running) ADD #total :n'
            : 'SET pagesPlanned = :next, updatedAt = :now ADD #total :n',
          ConditionExpression: 'pagesPlanned = :page',
          ExpressionAttributeNames: { '#total': 'total', ...(done ? { '#s': 'status' } : {}) },
          ExpressionAttributeValues: {
            ':page': page,
            ':next': page + 1,
            ':now': now,
            ':n': added,
            ...(done ? { ':t': true, ':running': 'running' } : {}),
          },
        }),
      );
    } catch (error) {
      if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') {
        throw toLabelerError(error, 'DynamoDB UpdateItem (job plan step)');
      }
      const record = await this.load(jobId);
      if (record && record.pagesPlanned > page) return false;
      throw new LabelerError(
        CODE.job.planOutOfOrder,
        `plan step ${page} of ${jobId} waits for the one before`,
        {
          permanent: false,
        },
      );
    }
    // planning → running once the first step is applied; a cancelled job stays cancelled.
    await this.#transition(jobId, 'planning', 'running', {});
    return true;
  }

  async #transition(
    jobId: string,
    from: JobStatus,
    to: JobStatus,
    extra: Record<string, unknown>,
  ): Promise<boolean> {
    const now = this.#now().toISOString();
    const sets = Object.keys(extra).map((_name, i) => `#x${i} = :x${i}`);
    try {
      await this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [PK]: jobPk(jobId), [SK]: JOB_SK },
          UpdateExpression: `SET #s = :to, updatedAt = :now${sets.map((s) => `, ${s}`).join('')}`,
          ConditionExpression: '#s = :from',
          ExpressionAttributeNames: {
            '#s': 'status',
            ...Object.fromEntries(Object.keys(extra).map((name, i) => [`#x${i}`, name])),
          },
          ExpressionAttributeValues: {
            ':from': from,
            ':to': to,
            ':now': now,
            ...Object.fromEntries(Object.values(extra).map((value, i) => [`:x${i}`, value])),
          },
        }),
      );
      this.#cache.delete(jobId);
      return true;
    } catch (error) {
      if ((error as { name?: string }).name === 'ConditionalCheckFailedException') return false;
      throw toLabelerError(error, 'DynamoDB UpdateItem (job status)');
    }
  }

  /**
   * planning|running → cancelling: the job is not finished until its counts add up
   * (`checkCompletion` then makes it cancelled, with its finishedAt).
   */
  async cancel(jobId: string): Promise<boolean> {
    for (const from of ['planning', 'running'] as const) {
      if (await this.#transition(jobId, from, 'cancelling', {})) return true;
    }
    return false;
  }

  async fail(jobId: string, error: { code: string; message: string }): Promise<void> {
    const finishedAt = this.#now().toISOString();
    for (const from of ['planning', 'running'] as const) {
      if (await this.#transition(jobId, from, 'failed', { finishedAt, error })) return;
    }
  }

  async settings(jobId: string): Promise<JobSettings | undefined> {
    const cached = this.#cache.get(jobId);
    if (cached && Date.now() - cached.at < JOBS.statusCacheMs) return cached.settings;
    const record = await this.load(jobId);
    const settings = record ? { status: record.status, mode: record.mode } : undefined;
    this.#cache.set(jobId, { at: Date.now(), settings });
    return settings;
  }

  async record(
    jobId: string,
    image: { bucket: string; key: string },
    outcome: JobOutcome,
    error?: { code: string; message: string },
    top?: Top1,
  ): Promise<boolean> {
    return countOutcome(this.#db, this.#table, jobId, image, outcome, error, top);
  }

  /**
   * Every side checks after its own write with consistent reads: the worker after it
   * counts, the planner after it marks planning done, the canceller after it moves the job
   * to cancelling, so whichever writes last sees all. running → succeeded, cancelling →
   * cancelled; a cancel racing a success loses or wins the conditional write, and the
   * loser's check reads the status again. The counters are never under (decision 0027) but
   * may be over after a crash, so once they reach the total the markers themselves are
   * counted, and those exact counts are what the finished job keeps.
   */
  async checkCompletion(jobId: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const record = await this.load(jobId);
      if (!record?.planningDone) return;
      if (record.status !== 'running' && record.status !== 'cancelling') return;
      if (jobTotalDone({ ...(await this.counts(jobId)), total: record.total }) < record.total) return;
      const send = this.#recount.sendRecount;
      if (send && record.total > (this.#recount.inlineRecountMax ?? JOBS.inlineRecountMax)) {
        await this.#startRecount(jobId, send);
        return;
      }
      const { counts: exact, top1 } = await this.#countMarkers(jobId);
      if (jobTotalDone({ ...exact, total: record.total }) < record.total) return;
      if (await this.#finish(record, exact, summarize(top1))) return;
    }
  }

  /**
   * The finishing transition with the exact counts and the label summary. The total cannot
   * grow once planning is done, so the status is the only condition. A scheduled run's
   * baseline is claimed first, so a failure to claim it comes back with the caller's retry
   * (after the transition nothing would check the job again); the divergence is sent only
   * by whichever call made the transition.
   */
  async #finish(
    record: JobRecord,
    counts: OutcomeCounts,
    summary: LabelSummary | undefined,
  ): Promise<boolean> {
    const to = record.status === 'running' ? 'succeeded' : 'cancelled';
    const drift = to === 'succeeded' ? await scheduleDrift(record, summary, this) : undefined;
    const moved = await this.#transition(record.jobId, record.status, to, {
      finishedAt: this.#now().toISOString(),
      finalCounts: counts,
      ...(summary ? { labelSummary: summary } : {}),
    });
    if (moved && drift) this.#recount.driftMetric?.(drift.schedule, drift.divergence);
    return moved;
  }

  /**
   * Makes `candidate` the schedule's baseline unless it has one: read first (a finished run
   * of an established schedule reads once), then a conditional Put, so the first run to
   * finish keeps it for good.
   */
  async claimBaseline(
    schedule: string,
    candidate: { jobId: string; top1: Record<string, number> },
  ): Promise<{ jobId: string; top1: Record<string, number> }> {
    const known = await this.#baseline(schedule);
    if (known) return known;
    try {
      await this.#db.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            [PK]: schedulePk(schedule),
            [SK]: SCHEDULE_BASELINE_SK,
            jobId: candidate.jobId,
            top1: candidate.top1,
          },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': PK },
        }),
      );
      return candidate;
    } catch (error) {
      if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') {
        throw toLabelerError(error, 'DynamoDB PutItem (schedule baseline)');
      }
    }
    const now = await this.#baseline(schedule);
    if (!now)
      throw new LabelerError(CODE.job.notFound, `the baseline of schedule ${schedule} vanished`, {
        permanent: false,
      });
    return now;
  }

  async #baseline(schedule: string): Promise<{ jobId: string; top1: Record<string, number> } | undefined> {
    const response = await this.#send<{ Item?: Record<string, unknown> }>(
      new GetCommand({
        TableName: this.#table,
        Key: { [PK]: schedulePk(schedule), [SK]: SCHEDULE_BASELINE_SK },
        ConsistentRead: true,
      }),
      'GetItem (schedule baseline)',
    );
    const item = response.Item;
    return item ? { jobId: String(item.jobId), top1: countsMap(item.top1) } : undefined;
  }

  async scheduleBaseline(schedule: string): Promise<string | undefined> {
    return (await this.#baseline(schedule))?.jobId;
  }

  /**
   * One recount chain per job: the flag `finishing` (its start time) is set on the condition
   * that no chain is running, or that the running one is stale (lost: its last message gone
   * to the dead-letter queue). A check that finds a chain running leaves `finishingAgain`, so
   * a chain that ends short of the total starts over for it rather than leaving the job.
   */
  async #startRecount(jobId: string, send: (message: RecountMessage) => Promise<void>): Promise<void> {
    const key = { [PK]: jobPk(jobId), [SK]: JOB_SK };
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = this.#now().getTime();
      try {
        await this.#db.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: key,
            UpdateExpression: 'SET finishing = :now REMOVE finishingAgain',
            ConditionExpression: 'attribute_not_exists(finishing) OR finishing < :stale',
            ExpressionAttributeValues: { ':now': now, ':stale': now - JOBS.recountStaleMs },
          }),
        );
      } catch (error) {
        if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') {
          throw toLabelerError(error, 'DynamoDB UpdateItem (job recount start)');
        }
        if (
          await this.#conditional(key, 'SET finishingAgain = :t', 'attribute_exists(finishing)', {
            ':t': true,
          })
        )
          return;
        continue;
      }
      try {
        await send(firstRecountStep(jobId));
      } catch (error) {
        // No chain runs: the flag goes, so the caller's retry starts one.
        await this.#conditional(key, 'REMOVE finishing', 'finishing = :now', { ':now': now }).catch(
          () => false,
        );
        throw error;
      }
      return;
    }
  }

  async #conditional(
    key: Record<string, string>,
    update: string,
    condition: string,
    values: Record<string, unknown>,
  ): Promise<boolean> {
    try {
      await this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: key,
          UpdateExpression: update,
          ConditionExpression: condition,
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (error) {
      if ((error as { name?: string }).name === 'ConditionalCheckFailedException') return false;
      throw toLabelerError(error, 'DynamoDB UpdateItem (job recount)');
    }
  }

  /** One consistent Query page of a shard's markers, counted; the cursor is the last sort key. */
  async markersPage(
    jobId: string,
    shard: number,
    cursor: string | undefined,
  ): Promise<{ counts: OutcomeCounts; top1: Top1Tally; next?: string }> {
    const pk = `${jobPk(jobId)}#${shard}`;
    const limit = this.#recount.recountPageLimit;
    const response = await this.#send<{
      Items?: Array<Record<string, unknown>>;
      LastEvaluatedKey?: Record<string, unknown>;
    }>(
      new QueryCommand({
        TableName: this.#table,
        KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :img)',
        ExpressionAttributeNames: {
          '#pk': PK,
          '#sk': SK,
          '#o': 'outcome',
          '#l': 'topLabel',
          '#s': 'topScore',
        },
        ExpressionAttributeValues: { ':pk': pk, ':img': 'img#' },
        ProjectionExpression: '#o, #l, #s',
        ConsistentRead: true,
        ...(limit === undefined ? {} : { Limit: limit }),
        ...(cursor ? { ExclusiveStartKey: { [PK]: pk, [SK]: cursor } } : {}),
      }),
      'Query (job markers page)',
    );
    const counts = { ...NO_COUNTS };
    const tops: Top1[] = [];
    for (const item of response.Items ?? []) {
      counts[item.outcome as JobOutcome]++;
      const top = topOf(item);
      if (top) tops.push(top);
    }
    const top1 = tallyOf(tops);
    const next = response.LastEvaluatedKey?.[SK];
    return typeof next === 'string' ? { counts, top1, next } : { counts, top1 };
  }

  async endRecount(jobId: string, counts: OutcomeCounts, top1?: Top1Tally): Promise<boolean> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const record = await this.load(jobId);
      if (!record || (record.status !== 'running' && record.status !== 'cancelling')) return false;
      if (jobTotalDone({ ...counts, total: record.total }) < record.total) break;
      if (await this.#finish(record, counts, top1 ? summarize(top1) : undefined)) return true;
    }
    const old = await this.#send<{ Attributes?: Record<string, unknown> }>(
      new UpdateCommand({
        TableName: this.#table,
        Key: { [PK]: jobPk(jobId), [SK]: JOB_SK },
        UpdateExpression: 'REMOVE finishing, finishingAgain',
        ReturnValues: 'ALL_OLD',
      }),
      'UpdateItem (job recount end)',
    );
    if (old.Attributes?.finishingAgain === true) await this.checkCompletion(jobId);
    return false;
  }

  async #countMarkers(jobId: string): Promise<{ counts: OutcomeCounts; top1: Top1Tally }> {
    const counts = { labeled: 0, failed: 0, skipped: 0, cancelled: 0 };
    const tops: Top1[] = [];
    for await (const marker of this.markers(jobId)) {
      counts[marker.outcome]++;
      if (marker.top) tops.push(marker.top);
    }
    return { counts, top1: tops.length === 0 ? NO_TALLY : tallyOf(tops) };
  }

  /**
   * A cancelling job's planning stops at step `page`: nothing more is listed, so the total
   * is what earlier steps enqueued. False when the step was already recorded.
   */
  async stopPlanning(jobId: string, page: number): Promise<boolean> {
    try {
      await this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [PK]: jobPk(jobId), [SK]: JOB_SK },
          UpdateExpression: 'SET pagesPlanned = :next, planningDone = :t, updatedAt = :now',
          ConditionExpression: 'pagesPlanned = :page',
          ExpressionAttributeValues: {
            ':page': page,
            ':next': page + 1,
            ':t': true,
            ':now': this.#now().toISOString(),
          },
        }),
      );
      return true;
    } catch (error) {
      if ((error as { name?: string }).name === 'ConditionalCheckFailedException') return false;
      throw toLabelerError(error, 'DynamoDB UpdateItem (job planning stopped)');
    }
  }

  /** Every image outcome of a job, shard by shard. */
  async *markers(jobId: string): AsyncIterable<JobMarker> {
    for (let n = 0; n < JOBS.counterShards; n++) {
      let start: Record<string, unknown> | undefined;
      do {
        const response: {
          Items?: Array<Record<string, unknown>>;
          LastEvaluatedKey?: Record<string, unknown>;
        } = await this.#send(
          new QueryCommand({
            TableName: this.#table,
            KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :img)',
            ExpressionAttributeNames: { '#pk': PK, '#sk': SK },
            ExpressionAttributeValues: { ':pk': `${jobPk(jobId)}#${n}`, ':img': 'img#' },
            // checkCompletion counts these after its own write: it must see every one written.
            ConsistentRead: true,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
          'Query (job markers)',
        );
        for (const item of response.Items ?? []) {
          const top = topOf(item);
          yield {
            bucket: String(item.bucket),
            key: String(item.key),
            outcome: item.outcome as JobOutcome,
            ...(item.error ? { error: item.error as { code: string; message: string } } : {}),
            ...(top ? { top } : {}),
          };
        }
        start = response.LastEvaluatedKey;
      } while (start);
    }
  }
}

function fromItem(item: Record<string, unknown>): JobRecord {
  return {
    jobId: String(item.jobId),
    status: item.status as JobStatus,
    bucket: String(item.bucket),
    prefix: String(item.prefix ?? ''),
    target: item.target as JobTarget,
    mode: item.mode as JobMode,
    model: item.model as JobModel,
    planningDone: item.planningDone === true,
    createdAt: String(item.createdAt),
    updatedAt: String(item.updatedAt),
    total: Number(item.total ?? 0),
    pagesPlanned: Number(item.pagesPlanned ?? 0),
    planStarted: item.planStarted === true,
    ...(item.finishedAt ? { finishedAt: String(item.finishedAt) } : {}),
    ...(item.scheduleName ? { scheduleName: String(item.scheduleName) } : {}),
    ...(item.targetReason ? { targetReason: String(item.targetReason) } : {}),
    ...(item.sample ? { sample: item.sample as JobSample } : {}),
    ...(item.idempotencyKey ? { idempotencyKey: String(item.idempotencyKey) } : {}),
    ...(item.error ? { error: item.error as { code: string; message: string } } : {}),
    ...(item.finalCounts ? { finalCounts: countsOf(item.finalCounts as Record<string, unknown>) } : {}),
    ...(item.labelSummary ? { labelSummary: summaryOf(item.labelSummary as Record<string, unknown>) } : {}),
  };
}

/** A number map as DynamoDB returns it (numbers may come back as strings of digits). */
function countsMap(value: unknown): Record<string, number> {
  return Object.fromEntries(
    Object.entries((value ?? {}) as Record<string, unknown>).map(([k, n]) => [k, Number(n)]),
  );
}

function summaryOf(item: Record<string, unknown>): LabelSummary {
  return {
    images: Number(item.images ?? 0),
    top1: countsMap(item.top1),
    meanTop1Score: Number(item.meanTop1Score ?? 0),
    shareUnderHalf: Number(item.shareUnderHalf ?? 0),
  };
}

function countsOf(item: Record<string, unknown>): Omit<JobCounts, 'total'> {
  return {
    labeled: Number(item.labeled ?? 0),
    failed: Number(item.failed ?? 0),
    skipped: Number(item.skipped ?? 0),
    cancelled: Number(item.cancelled ?? 0),
  };
}

/** A finished job shows the counts it kept; one still running its counters (over by a crash's images at most). */
function toJob(record: JobRecord, counters: { counts: Omit<JobCounts, 'total'>; usage?: JobUsage }): Job {
  const { pagesPlanned: _p, planStarted: _s, idempotencyKey: _k, finalCounts, ...job } = record;
  return {
    ...job,
    ...(finalCounts ?? counters.counts),
    ...(counters.usage ? { usage: counters.usage } : {}),
  };
}
