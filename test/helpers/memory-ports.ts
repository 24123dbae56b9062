import { createHash, randomUUID } from 'node:crypto';
import { CODE } from '../../shared/error-codes.ts';
import { ImageTooLargeError, LabelerError, ObjectNotFoundError } from '../../shared/errors.ts';
import {
  type DriftMetric,
  NO_TALLY,
  scheduleDrift,
  summarize,
  type Top1,
  type Top1Tally,
  tallyOf,
  topOfResult,
} from '../../shared/labeling/drift.ts';
import {
  addCounts,
  firstRecountStep,
  NO_COUNTS,
  type OutcomeCounts,
  type RecountMessage,
} from '../../shared/labeling/finish-job.ts';
import type {
  Job,
  JobCounts,
  JobLedger,
  JobMarker,
  JobOutcome,
  JobRequest,
  JobSettings,
  JobStatus,
  JobsStore,
  JobUsage,
  LabelSummary,
} from '../../shared/labeling/jobs.ts';
import { JOB_USAGE_FIELDS, jobTotalDone } from '../../shared/labeling/jobs.ts';
import type { ListedObject, PlanJobRecord, PlanMessage, PlanPorts } from '../../shared/labeling/plan-job.ts';
import { resultAttributes, resultFromAttributes } from '../../shared/labeling/result-contract.ts';
import {
  type ExportStore,
  type ImageResult,
  type ImageStore,
  imageId,
  type LabelHit,
  type ModelRef,
  type Page,
  type PutOutcome,
  type ResultsStore,
  type ResultWrite,
} from '../../shared/labeling/results.ts';
import { paddedSequencer, s3EventBody } from '../../shared/labeling/s3-event.ts';
import type { JobSample } from '../../shared/labeling/sample.ts';
import { type JobModel, routeOfJob, type StackModels } from '../../shared/labeling/stack-models.ts';
import { JOBS, LABELING } from '../../shared/settings.ts';

/*
 * In-memory ports for the fast tier (test/unit): the use cases run against these exactly as
 * against DynamoDB and S3. The semantics the use cases rely on are held to the real stores by
 * test/helpers/results-store-contract.ts, run over both (test/unit and test/integration).
 */

/** A job as this store holds it: the plan record plus what `Job` shows. */
interface MemoryJob extends PlanJobRecord {
  readonly model: JobModel;
  readonly planningDone: boolean;
  readonly total: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly finishedAt?: string;
  readonly scheduleName?: string;
  readonly targetReason?: string;
  readonly error?: { code: string; message: string };
  readonly finalCounts?: OutcomeCounts;
  readonly labelSummary?: LabelSummary;
}

/** DynamoJobsStore's recount options (shared/aws/dynamo-jobs-store.ts RecountOptions). */
interface MemoryRecountOptions {
  readonly sendRecount?: (message: RecountMessage) => Promise<void>;
  readonly inlineRecountMax?: number;
  readonly recountPageLimit?: number;
  readonly driftMetric?: DriftMetric;
}

/**
 * Jobs, their outcome markers and counts (DynamoJobsStore's semantics): one marker per (job,
 * image), counts derived from the markers, so an outcome is counted exactly once.
 */
export class MemoryJobs implements JobsStore, JobLedger {
  readonly #jobs = new Map<string, MemoryJob>();
  readonly #markers = new Map<string, Map<string, JobMarker>>();
  /** Counter ADDs without their markers (a crash between the two): DynamoJobsStore's over-count. */
  readonly #over = new Map<string, number>();
  /** A job's recount chain: since when it runs, and whether a check came in meanwhile. */
  readonly #finishing = new Map<string, { since: number; again: boolean }>();
  readonly #recount: MemoryRecountOptions;
  #seq = 0;
  /** Schedule → its baseline run's id and top-1 histogram (DynamoJobsStore's `sched#` items). */
  readonly #baselines = new Map<string, { jobId: string; top1: Record<string, number> }>();

  constructor(recount: MemoryRecountOptions = {}) {
    this.#recount = recount;
  }

  /** Test hook: `n` counter ADDs whose markers were never written (a worker crashed between). */
  overCount(jobId: string, n: number): void {
    this.#over.set(jobId, (this.#over.get(jobId) ?? 0) + n);
  }

  /** Whether a recount chain is flagged as running for the job. */
  recounting(jobId: string): boolean {
    return this.#finishing.has(jobId);
  }

  async markersPage(
    jobId: string,
    shard: number,
    cursor: string | undefined,
  ): Promise<{ counts: OutcomeCounts; top1: Top1Tally; next?: string }> {
    const ids = [...(this.#markers.get(jobId)?.entries() ?? [])]
      .filter(([id]) => memoryShard(id) === shard && (cursor === undefined || id > cursor))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const page = ids.slice(0, this.#recount.recountPageLimit ?? 1000);
    const counts = { ...NO_COUNTS };
    for (const [, m] of page) counts[m.outcome]++;
    const top1 = tallyOf(page.flatMap(([, m]) => (m.top ? [m.top] : [])));
    const last = page.at(-1)?.[0];
    return page.length < ids.length && last !== undefined ? { counts, top1, next: last } : { counts, top1 };
  }

  async endRecount(jobId: string, counts: OutcomeCounts, top1?: Top1Tally): Promise<boolean> {
    const job = this.#jobs.get(jobId);
    if (!job || (job.status !== 'running' && job.status !== 'cancelling')) return false;
    if (jobTotalDone({ ...counts, total: job.total }) >= job.total) {
      return this.#finish(job, counts, top1 ? summarize(top1) : undefined);
    }
    const chain = this.#finishing.get(jobId);
    this.#finishing.delete(jobId);
    if (chain?.again) await this.checkCompletion(jobId);
    return false;
  }

  async create(
    request: JobRequest,
    model: JobModel,
    sample?: JobSample,
  ): Promise<{ record: MemoryJob; created: boolean }> {
    const jobId = request.idempotencyKey
      ? `j-${createHash('sha256').update(request.idempotencyKey).digest('hex').slice(0, 24)}`
      : `j-${randomUUID().replace(/-/g, '').slice(0, 24)}`;
    const existing = this.#jobs.get(jobId);
    if (existing) return { record: existing, created: false };
    // Distinct, increasing creation times: `list` is newest first, as the by-created index is.
    const now = new Date(Date.UTC(2026, 0, 1) + this.#seq++ * 1000).toISOString();
    const record: MemoryJob = {
      jobId,
      status: 'planning',
      bucket: request.bucket,
      prefix: request.prefix,
      target: request.target,
      mode: request.mode,
      model,
      planningDone: false,
      pagesPlanned: 0,
      planStarted: false,
      total: 0,
      createdAt: now,
      updatedAt: now,
      ...(request.scheduleName ? { scheduleName: request.scheduleName } : {}),
      ...(request.targetReason ? { targetReason: request.targetReason } : {}),
      ...(sample ? { sample } : {}),
    };
    this.#jobs.set(jobId, record);
    return { record, created: true };
  }

  async load(jobId: string): Promise<MemoryJob | undefined> {
    return this.#jobs.get(jobId);
  }

  #update(jobId: string, change: Partial<MemoryJob>): void {
    const job = this.#jobs.get(jobId);
    if (job) this.#jobs.set(jobId, { ...job, ...change, updatedAt: new Date().toISOString() });
  }

  /** Moves `from` → `to`; false when the job is not in `from` (DynamoDB's conditional update). */
  #transition(jobId: string, from: JobStatus, to: JobStatus, extra: Partial<MemoryJob> = {}): boolean {
    if (this.#jobs.get(jobId)?.status !== from) return false;
    this.#update(jobId, { status: to, ...extra });
    return true;
  }

  async markPlanStarted(jobId: string): Promise<void> {
    this.#update(jobId, { planStarted: true });
  }

  async recordPlanned(jobId: string, page: number, added: number, done: boolean): Promise<boolean> {
    const job = this.#jobs.get(jobId);
    if (!job || job.pagesPlanned !== page) {
      if (job && job.pagesPlanned > page) return false;
      throw new LabelerError(
        CODE.job.planOutOfOrder,
        `plan step ${page} of ${jobId} waits for the one before`,
        {
          permanent: false,
        },
      );
    }
    this.#update(jobId, {
      pagesPlanned: page + 1,
      total: job.total + added,
      ...(done ? { planningDone: true } : {}),
    });
    this.#transition(jobId, 'planning', 'running');
    return true;
  }

  async stopPlanning(jobId: string, page: number): Promise<boolean> {
    if (this.#jobs.get(jobId)?.pagesPlanned !== page) return false;
    this.#update(jobId, { pagesPlanned: page + 1, planningDone: true });
    return true;
  }

  async fail(jobId: string, error: { code: string; message: string }): Promise<void> {
    const finishedAt = new Date().toISOString();
    for (const from of ['planning', 'running'] as const) {
      if (this.#transition(jobId, from, 'failed', { finishedAt, error })) return;
    }
  }

  async cancel(jobId: string): Promise<boolean> {
    return (
      this.#transition(jobId, 'planning', 'cancelling') || this.#transition(jobId, 'running', 'cancelling')
    );
  }

  async checkCompletion(jobId: string): Promise<void> {
    const job = this.#jobs.get(jobId);
    if (!job?.planningDone || (job.status !== 'running' && job.status !== 'cancelling')) return;
    const counters = addCounts(this.counts(jobId), { ...NO_COUNTS, labeled: this.#over.get(jobId) ?? 0 });
    if (jobTotalDone({ ...counters, total: job.total }) < job.total) return;
    const send = this.#recount.sendRecount;
    if (send && job.total > (this.#recount.inlineRecountMax ?? JOBS.inlineRecountMax)) {
      const chain = this.#finishing.get(jobId);
      if (chain && chain.since >= Date.now() - JOBS.recountStaleMs) {
        chain.again = true;
        return;
      }
      this.#finishing.set(jobId, { since: Date.now(), again: false });
      try {
        await send(firstRecountStep(jobId));
      } catch (error) {
        this.#finishing.delete(jobId);
        throw error;
      }
      return;
    }
    if (jobTotalDone({ ...this.counts(jobId), total: job.total }) < job.total) return;
    const tops = [...(this.#markers.get(jobId)?.values() ?? [])].flatMap((m) => (m.top ? [m.top] : []));
    await this.#finish(job, this.counts(jobId), summarize(tops.length === 0 ? NO_TALLY : tallyOf(tops)));
  }

  /** DynamoJobsStore's finishing transition: counts and summary kept, a scheduled run's drift sent. */
  async #finish(job: MemoryJob, counts: OutcomeCounts, summary: LabelSummary | undefined): Promise<boolean> {
    const to = job.status === 'running' ? 'succeeded' : 'cancelled';
    const drift = to === 'succeeded' ? await scheduleDrift(job, summary, this) : undefined;
    const moved = this.#transition(job.jobId, job.status, to, {
      finishedAt: new Date().toISOString(),
      finalCounts: counts,
      ...(summary ? { labelSummary: summary } : {}),
    });
    if (moved && drift) this.#recount.driftMetric?.(drift.schedule, drift.divergence);
    return moved;
  }

  async claimBaseline(
    schedule: string,
    candidate: { jobId: string; top1: Record<string, number> },
  ): Promise<{ jobId: string; top1: Record<string, number> }> {
    const known = this.#baselines.get(schedule);
    if (known) return known;
    this.#baselines.set(schedule, candidate);
    return candidate;
  }

  async scheduleBaseline(schedule: string): Promise<string | undefined> {
    return this.#baselines.get(schedule)?.jobId;
  }

  async settings(jobId: string): Promise<JobSettings | undefined> {
    const job = this.#jobs.get(jobId);
    return job ? { status: job.status, mode: job.mode } : undefined;
  }

  async record(
    jobId: string,
    image: { bucket: string; key: string },
    outcome: JobOutcome,
    error?: { code: string; message: string },
    top?: Top1,
  ): Promise<boolean> {
    return this.mark(jobId, image, outcome, error, top);
  }

  /** Records an outcome unless the image has one; the results store calls it with the result's write. */
  mark(
    jobId: string,
    image: { bucket: string; key: string },
    outcome: JobOutcome,
    error?: { code: string; message: string },
    top?: Top1,
  ): boolean {
    const markers = this.#markers.get(jobId) ?? new Map<string, JobMarker>();
    this.#markers.set(jobId, markers);
    if (markers.has(imageId(image))) return false;
    markers.set(imageId(image), {
      bucket: image.bucket,
      key: image.key,
      outcome,
      ...(error ? { error } : {}),
      ...(top && outcome === 'labeled' ? { top: { label: top.label, score: top.score } } : {}),
    });
    return true;
  }

  hasMarker(jobId: string, image: { bucket: string; key: string }): boolean {
    return this.#markers.get(jobId)?.has(imageId(image)) ?? false;
  }

  counts(jobId: string): Omit<JobCounts, 'total'> {
    const counts = { labeled: 0, failed: 0, skipped: 0, cancelled: 0 };
    for (const m of this.#markers.get(jobId)?.values() ?? []) counts[m.outcome]++;
    return counts;
  }

  readonly #usage = new Map<string, JobUsage>();

  async addUsage(jobId: string, usage: JobUsage): Promise<void> {
    const sum = this.#usage.get(jobId);
    this.#usage.set(
      jobId,
      sum
        ? (Object.fromEntries(JOB_USAGE_FIELDS.map((f) => [f, sum[f] + usage[f]])) as unknown as JobUsage)
        : { ...usage },
    );
  }

  async get(jobId: string): Promise<Job | undefined> {
    const job = this.#jobs.get(jobId);
    if (!job) return undefined;
    const { pagesPlanned: _p, planStarted: _s, finalCounts, ...rest } = job;
    const usage = this.#usage.get(jobId);
    return { ...rest, ...(finalCounts ?? this.counts(jobId)), ...(usage ? { usage } : {}) };
  }

  async list(limit: number): Promise<Job[]> {
    const newest = [...this.#jobs.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    return Promise.all(newest.slice(0, limit).map(async (j) => (await this.get(j.jobId)) as Job));
  }

  async *markers(jobId: string): AsyncIterable<JobMarker> {
    yield* this.#markers.get(jobId)?.values() ?? [];
  }
}

/** The shard of an image's marker, spread by a hash as DynamoJobsStore's shardPk. */
function memoryShard(id: string): number {
  return Number.parseInt(createHash('sha256').update(id).digest('hex').slice(0, 8), 16) % JOBS.counterShards;
}

/** DynamoDB's limit on a partition key; DynamoDB refuses longer ones (aws/invalid-request). */
const MAX_PARTITION_KEY_BYTES = 2048;

/**
 * Results per (image, model), DynamoResultsStore's semantics: a result is written unless the
 * image has one with the same eTag or a newer sequencer; a job's result is counted with it,
 * once (`jobs`). Results are stored as their DynamoDB attributes (the result contract), so
 * what is read back has the same shape, the sequencer padded as the table holds it.
 */
export class MemoryResultsStore implements ResultsStore {
  readonly #results = new Map<string, Record<string, unknown>>();
  readonly #indexMinScore: number;
  readonly #jobs: MemoryJobs | undefined;

  constructor(options: { indexMinScore?: number; jobs?: MemoryJobs } = {}) {
    this.#indexMinScore = options.indexMinScore ?? LABELING.indexMinScore;
    this.#jobs = options.jobs;
  }

  #key(image: { bucket: string; key: string }, model: ModelRef): string {
    return `${imageId(image)}\u0000${model.id}@${model.version}`;
  }

  async findExisting(
    images: ReadonlyArray<{ bucket: string; key: string }>,
    model: ModelRef,
  ): Promise<Map<string, ImageResult>> {
    const found = new Map<string, ImageResult>();
    for (const image of images) {
      const item = this.#results.get(this.#key(image, model));
      if (item) found.set(imageId(image), resultFromAttributes(item));
    }
    return found;
  }

  async put(result: ImageResult, previous?: ImageResult, relabel = false): Promise<PutOutcome> {
    const pk = `img#${result.bucket}/${result.key}`;
    if (Buffer.byteLength(pk, 'utf8') > MAX_PARTITION_KEY_BYTES) {
      throw new LabelerError(
        CODE.aws.invalidRequest,
        `the key of ${imageId(result)} is too long for DynamoDB`,
      );
    }
    const key = this.#key(result, result.model);
    const stored = this.#results.get(key);
    const sequencer = paddedSequencer(result.sequencer);
    // A job's result over other content writes if that result is still there (no sequencer of its own).
    const replaces = result.jobId !== undefined && previous !== undefined && previous.eTag !== result.eTag;
    const writes =
      relabel && result.jobId
        ? !stored || (stored.eTag === result.eTag && stored.jobId !== result.jobId)
        : replaces
          ? !stored || stored.eTag === previous?.eTag
          : !stored || (stored.eTag !== result.eTag && String(stored.sequencer) < sequencer);
    if (!writes) return 'duplicate';
    const jobs = this.#jobs;
    // A result whose job already has the image's outcome (the job gave up on it) is written, not counted again.
    if (jobs && result.jobId)
      jobs.mark(
        result.jobId,
        result,
        result.status === 'ok' ? 'labeled' : 'failed',
        result.error,
        topOfResult(result),
      );
    this.#results.set(key, {
      ...resultAttributes(result),
      // A relabel keeps the upload's sequencer, so an older event arriving late still loses.
      sequencer: (relabel || replaces) && previous ? paddedSequencer(previous.sequencer) : sequencer,
    });
    return 'written';
  }

  async putAll(writes: readonly ResultWrite[]): Promise<Array<PromiseSettledResult<PutOutcome>>> {
    const settled: Array<PromiseSettledResult<PutOutcome>> = [];
    for (const w of writes) {
      settled.push(
        await this.put(w.result, w.previous, w.relabel).then(
          (value) => ({ status: 'fulfilled', value }) as const,
          (reason: unknown) => ({ status: 'rejected', reason }) as const,
        ),
      );
    }
    return settled;
  }

  async getByImage(bucket: string, key: string): Promise<ImageResult[]> {
    return [...this.#results.entries()]
      .filter(([k]) => k.startsWith(`${bucket}/${key}\u0000`))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([, item]) => resultFromAttributes(item));
  }

  async queryByLabel(query: {
    model: ModelRef;
    label: string;
    minScore: number;
    limit: number;
    cursor?: string;
  }): Promise<Page<LabelHit>> {
    const of = `${query.model.id}@${query.model.version}#${query.label}`;
    let after: string | undefined;
    if (query.cursor) {
      try {
        const parsed = JSON.parse(Buffer.from(query.cursor, 'base64url').toString('utf8')) as Record<
          string,
          unknown
        >;
        if (parsed.of !== of || typeof parsed.after !== 'string') throw new Error('another query');
        after = parsed.after;
      } catch {
        throw new LabelerError(CODE.query.badCursor, 'the cursor is not one this query returned');
      }
    }
    // Index order: score as fixed-width text, then image, best first (the labelSk, compared as bytes).
    const hits: Array<LabelHit & { sk: string }> = [];
    for (const item of this.#results.values()) {
      const r = resultFromAttributes(item);
      if (r.model.id !== query.model.id || r.model.version !== query.model.version) continue;
      r.labels
        .filter((l) => l.score >= this.#indexMinScore)
        .forEach((l, i) => {
          const sk = `${l.score.toFixed(6)}#${r.bucket}/${r.key}`;
          if (l.label === query.label && sk >= query.minScore.toFixed(6)) {
            hits.push({ bucket: r.bucket, key: r.key, label: l.label, score: l.score, rank: i + 1, sk });
          }
        });
    }
    hits.sort((a, b) => Buffer.compare(Buffer.from(b.sk), Buffer.from(a.sk)));
    const from =
      after === undefined
        ? hits
        : hits.filter((h) => Buffer.compare(Buffer.from(h.sk), Buffer.from(after)) < 0);
    const page = from.slice(0, query.limit);
    const items = page.map(({ sk: _sk, ...hit }) => hit);
    const last = page.at(-1);
    return from.length > page.length && last
      ? { items, cursor: Buffer.from(JSON.stringify({ of, after: last.sk })).toString('base64url') }
      : { items };
  }
}

/**
 * A fake S3: objects by bucket and key with an MD5 eTag. As an ImageStore it raises what
 * S3ImageStore raises (object/not-found, object/changed, image/too-large); `faults` makes a
 * read of a key throw the given error instead (a fault S3 cannot be asked for).
 */
export class MemoryS3 implements ImageStore {
  readonly #objects = new Map<string, { bytes: Uint8Array; eTag: string }>();
  readonly #buckets = new Set<string>();
  readonly faults = new Map<string, unknown>();
  readonly maxBytes: number;

  constructor(maxBytes = 1 << 24) {
    this.maxBytes = maxBytes;
  }

  /** Stores the object and returns the ref an S3 event for it would carry. */
  put(
    bucket: string,
    key: string,
    bytes: Uint8Array,
  ): { bucket: string; key: string; eTag: string; size: number } {
    const eTag = createHash('md5').update(bytes).digest('hex');
    this.#buckets.add(bucket);
    this.#objects.set(`${bucket}/${key}`, { bytes, eTag });
    return { bucket, key, eTag, size: bytes.length };
  }

  delete(bucket: string, key: string): void {
    this.#objects.delete(`${bucket}/${key}`);
  }

  async get(ref: { bucket: string; key: string; eTag: string }): Promise<Uint8Array> {
    const where = `s3://${ref.bucket}/${ref.key}`;
    const fault = this.faults.get(imageId(ref));
    if (fault !== undefined) throw fault;
    const object = this.#objects.get(imageId(ref));
    if (!object) throw new ObjectNotFoundError(where);
    if (object.eTag !== ref.eTag) {
      throw new LabelerError(
        CODE.object.changed,
        `${where} changed since the event (eTag ${object.eTag}, expected ${ref.eTag})`,
      );
    }
    if (object.bytes.length > this.maxBytes) throw new ImageTooLargeError(object.bytes.length, this.maxBytes);
    return object.bytes;
  }

  /** One ListObjectsV2 page: keys in order after the token (the last key of the page before). */
  listPage(
    bucket: string,
    prefix: string,
    token: string | undefined,
    maxKeys: number,
  ): { objects: ListedObject[]; next?: string } {
    if (!this.#buckets.has(bucket)) {
      throw new LabelerError(CODE.job.listFailed, `s3://${bucket}/${prefix} cannot be listed: NoSuchBucket`);
    }
    const keys = [...this.#objects.keys()]
      .filter((id) => id.startsWith(`${bucket}/${prefix}`))
      .map((id) => id.slice(bucket.length + 1))
      .sort()
      .filter((key) => token === undefined || key > token);
    const page = keys.slice(0, maxKeys);
    const objects = page.map((key) => {
      const o = this.#objects.get(`${bucket}/${key}`) as { bytes: Uint8Array; eTag: string };
      return { key, size: o.bytes.length, eTag: o.eTag };
    });
    const last = page.at(-1);
    return keys.length > page.length && last ? { objects, next: last } : { objects };
  }
}

export class MemoryExports implements ExportStore {
  readonly objects = new Map<string, readonly string[]>();
  async putLines(key: string, lines: readonly string[]): Promise<void> {
    this.objects.set(key, lines);
  }
}

/** A message sent to a queue, as the consumer receives it. */
export interface QueuedMessage {
  readonly messageId: string;
  readonly body: string;
  /** Image messages: the hosted model whose queue it went to. */
  readonly model?: string;
}

/** One hosted model, named "default", as a stack of one model (stack-models.ts). */
export function oneModelStack(model: ModelRef, objectsPerMessage = 10): StackModels {
  return {
    default: 'default',
    models: [
      {
        name: 'default',
        ...model,
        jobsQueueUrl: 'memory://jobs/default',
        bulkQueueUrl: 'memory://bulk/default',
        objectsPerMessage,
      },
    ],
  };
}

/**
 * The plan ports over a MemoryS3 and MemoryJobs: image messages go to `queues[target]` as
 * S3-event bodies tagged with the job (sequencer 0, as shared/aws/plan-job.ts sends them)
 * and the model whose queue they are routed to, in that model's message size; plan
 * messages to `planQueue`. A ModelRef stands for a stack hosting that one model.
 */
export function memoryPlanPorts(
  s3: MemoryS3,
  jobs: MemoryJobs,
  hosted: ModelRef | StackModels,
  objectsPerMessage = 10,
): PlanPorts & {
  readonly queues: Record<'lambda' | 'gpu', QueuedMessage[]>;
  readonly planQueue: QueuedMessage[];
} {
  const models = 'models' in hosted ? hosted : oneModelStack(hosted, objectsPerMessage);
  const queues: Record<'lambda' | 'gpu', QueuedMessage[]> = { lambda: [], gpu: [] };
  const planQueue: QueuedMessage[] = [];
  let n = 0;
  const id = () => `m-${++n}`;
  return {
    jobs,
    models,
    queues,
    planQueue,
    async listPage(bucket, prefix, token, maxKeys) {
      return s3.listPage(bucket, prefix, token, maxKeys);
    },
    async sendImages({ target, jobId, mode, model }, bucket, objects) {
      const routed = routeOfJob(models, model, target);
      for (let i = 0; i < objects.length; i += routed.objectsPerMessage) {
        const records = objects.slice(i, i + routed.objectsPerMessage).map((o) => ({
          region: 'us-east-1',
          bucket,
          key: o.key,
          size: o.size,
          eTag: o.eTag,
          sequencer: '0',
        }));
        queues[target].push({
          messageId: id(),
          body: s3EventBody(records, { jobId, mode }),
          model: routed.name,
        });
      }
    },
    async sendPlan(message: PlanMessage) {
      planQueue.push({ messageId: id(), body: JSON.stringify(message) });
    },
  };
}
