import { z } from 'zod';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import { JOBS } from '../settings.ts';
import { top1TallySchema } from './drift.ts';
import { type RecountJobsPort, recountStep } from './finish-job.ts';
import { folderPrefix } from './job-location.ts';
import type { JobMode, JobRequest, JobStatus, JobTarget } from './jobs.ts';
import { inSample, type JobSample, resolveSample } from './sample.ts';
import { type JobModel, resolveHostedModel, type StackModels } from './stack-models.ts';

const seedSchema = z
  .number()
  .int()
  .min(0)
  .max(2 ** 31 - 1);
// A sample as asked for (shared/labeling/sample.ts); the bound is worked out at start.
const sampleSchema = z.union([
  z.object({ count: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER), seed: seedSchema }).strict(),
  z.object({ percent: z.number().gt(0).max(100), seed: seedSchema }).strict(),
]);

export const jobRequestSchema = z.object({
  bucket: z
    .string()
    .min(3)
    .max(63)
    .regex(/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/, 'an S3 bucket name'),
  // A folder (shared/labeling/job-location.ts): "" or ending with "/", never an s3:// URL.
  prefix: z
    .string()
    .max(1024)
    .refine(
      (p) => !/^s3:\/\//i.test(p),
      'a key prefix such as datasets/h1/, not an s3:// URL (the bucket goes in bucket)',
    )
    .refine((p) => !p.startsWith('/'), 'keys do not start with "/"')
    .transform(folderPrefix)
    .default(''),
  target: z.enum(['lambda', 'gpu']).default('lambda'),
  mode: z.enum(['all', 'stale']).default('all'),
  idempotencyKey: z.string().min(1).max(512).optional(),
  scheduleName: z.string().min(1).max(256).optional(),
  targetReason: z.string().min(1).max(1000).optional(),
  sample: sampleSchema.optional(),
  // A hosted model's name, id or id@version (stack-models.ts); resolved at start.
  model: z.string().min(1).max(200).optional(),
});

export const planMessageSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('start'), request: jobRequestSchema }),
  z.object({
    kind: z.literal('continue'),
    jobId: z.string().regex(/^j-[a-z0-9]{1,64}$/),
    page: z.number().int().nonnegative(),
    token: z.string().min(1).optional(),
  }),
  // A step of a big job's finishing recount (shared/labeling/finish-job.ts, decision 0027).
  z.object({
    kind: z.literal('recount'),
    jobId: z.string().regex(/^j-[a-z0-9]{1,64}$/),
    shard: z.number().int().nonnegative(),
    cursor: z.string().min(1).optional(),
    counts: z
      .object({
        labeled: z.number().int().nonnegative(),
        failed: z.number().int().nonnegative(),
        skipped: z.number().int().nonnegative(),
        cancelled: z.number().int().nonnegative(),
      })
      .strict(),
    top1: top1TallySchema.optional(),
  }),
]);
export type PlanMessage = z.infer<typeof planMessageSchema>;

/** Throws job/invalid-request with every problem named. */
export function parseJobRequest(input: unknown): JobRequest {
  const parsed = jobRequestSchema.safeParse(input);
  if (!parsed.success) throw invalid(parsed.error);
  return parsed.data;
}

export function parsePlanMessage(body: string): PlanMessage {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new LabelerError(CODE.job.invalidRequest, 'the plan message is not JSON');
  }
  const parsed = planMessageSchema.safeParse(json);
  if (!parsed.success) throw invalid(parsed.error);
  return parsed.data;
}

function invalid(error: z.ZodError): LabelerError {
  const problems = error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`).join('; ');
  return new LabelerError(CODE.job.invalidRequest, `invalid job request: ${problems}`);
}

export interface ListedObject {
  readonly key: string;
  readonly size: number;
  readonly eTag: string;
}

/** The job state planning reads and writes (shared/aws/dynamo-jobs-store.ts). */
export interface PlanJobsPort extends RecountJobsPort {
  /** `sample`: `request.sample` resolved, stored with the job (its bound included). */
  create(
    request: JobRequest,
    model: JobModel,
    sample?: JobSample,
  ): Promise<{ record: PlanJobRecord; created: boolean }>;
  load(jobId: string): Promise<PlanJobRecord | undefined>;
  markPlanStarted(jobId: string): Promise<void>;
  recordPlanned(jobId: string, page: number, added: number, done: boolean): Promise<boolean>;
  /** A cancelling job: step `page` lists nothing and marks planning done (the total is final). */
  stopPlanning(jobId: string, page: number): Promise<boolean>;
  fail(jobId: string, error: { code: string; message: string }): Promise<void>;
  checkCompletion(jobId: string): Promise<void>;
}

export interface PlanJobRecord {
  readonly jobId: string;
  readonly status: JobStatus;
  readonly bucket: string;
  readonly prefix: string;
  readonly target: JobTarget;
  readonly mode: JobMode;
  readonly pagesPlanned: number;
  readonly planStarted: boolean;
  /** Only keys in the sample are planned. */
  readonly sample?: JobSample;
  /** The model the job labels with: its images go to that model's queues. */
  readonly model: JobModel;
}

export interface PlanPorts {
  readonly jobs: PlanJobsPort;
  /** One ListObjectsV2 page. */
  listPage(
    bucket: string,
    prefix: string,
    token: string | undefined,
    maxKeys: number,
  ): Promise<{ objects: ListedObject[]; next?: string }>;
  /**
   * Enqueues the objects as S3-event-shaped messages tagged with the job id and mode on the
   * target's queue (the mode tells the worker whether to label an already labeled object).
   */
  sendImages(
    job: {
      readonly target: JobTarget;
      readonly jobId: string;
      readonly mode: JobMode;
      readonly model: JobModel;
    },
    bucket: string,
    objects: readonly ListedObject[],
  ): Promise<void>;
  sendPlan(message: PlanMessage): Promise<void>;
  /** The models the stack hosts: a request names one, or gets the default. */
  readonly models: StackModels;
}

export interface PlanOptions {
  /** Objects per ListObjectsV2 page (JOBS.pageSize). */
  readonly pageSize: number;
  /** A step lists pages until this much time has passed (JOBS.stepBudgetMs). */
  readonly stepBudgetMs: number;
  /** At most this many pages per step (tests: 1). */
  readonly maxPagesPerStep?: number;
  /** How long a step waits for the step before it to be recorded before going back to the queue. @default 10000 */
  readonly predecessorWaitMs?: number;
  readonly clock?: () => number;
  /** Marker pages one finishing-recount step reads (tests: 1). @default JOBS.recountPagesPerStep */
  readonly recountPagesPerStep?: number;
}

export type PlanOutcome =
  | { readonly kind: 'started'; readonly jobId: string; readonly created: boolean }
  | {
      readonly kind: 'planned';
      readonly jobId: string;
      readonly page: number;
      readonly objects: number;
      readonly done: boolean;
    }
  | { readonly kind: 'recounted'; readonly jobId: string; readonly done: boolean; readonly finished: boolean }
  | { readonly kind: 'skipped'; readonly jobId: string; readonly reason: string };

/**
 * Creates the job (once per idempotency key) and sends its first plan step. A retried
 * start finds the job; it resends the first step only if the first try stopped before
 * recording that it sent it, so planning never stalls and rarely repeats.
 */
export async function startJob(
  input: unknown,
  ports: PlanPorts,
): Promise<{ jobId: string; created: boolean }> {
  const request = parseJobRequest(input);
  // Before anything is listed: a model the stack does not host is the caller's error.
  const hosted = resolveHostedModel(ports.models, request.model);
  // A sample's bound is fixed once, before the job exists: every plan step then decides
  // each listed key alone. A count lists the prefix here (decision 0036).
  const sample = request.sample
    ? await resolveSample(request.sample, () => listKeys(ports, request.bucket, request.prefix))
    : undefined;
  const { record, created } = await ports.jobs.create(
    request,
    { id: hosted.id, version: hosted.version, name: hosted.name },
    sample,
  );
  if (!record.planStarted && record.status === 'planning') {
    await ports.sendPlan({ kind: 'continue', jobId: record.jobId, page: 0 });
    await ports.jobs.markPlanStarted(record.jobId);
  }
  return { jobId: record.jobId, created };
}

/**
 * One plan message. A `continue` step lists pages from its token within the time budget,
 * enqueues their objects, sends the next step, and only then records itself (total +=
 * objects, pagesPlanned = page + 1) on the condition pagesPlanned = page: a crash before
 * the record redoes the step (its images are counted once by the workers' markers), a
 * duplicate after it stops at the check.
 */
export async function planStep(body: string, ports: PlanPorts, options: PlanOptions): Promise<PlanOutcome> {
  const message = parsePlanMessage(body);
  if (message.kind === 'start') {
    const started = await startJob(message.request, ports);
    return { kind: 'started', ...started };
  }
  if (message.kind === 'recount') {
    const job = await ports.jobs.load(message.jobId);
    if (!job) throw new LabelerError(CODE.job.notFound, `job ${message.jobId} does not exist`);
    if (job.status !== 'running' && job.status !== 'cancelling') {
      return { kind: 'skipped', jobId: message.jobId, reason: `job is ${job.status}` };
    }
    const step = await recountStep(message, ports.jobs, (next) => ports.sendPlan(next), {
      shards: JOBS.counterShards,
      maxPages: options.recountPagesPerStep ?? JOBS.recountPagesPerStep,
    });
    return { kind: 'recounted', jobId: message.jobId, ...step };
  }
  const { jobId, page } = message;
  let job = await ports.jobs.load(jobId);
  // The step before sends this one just before recording itself: give it a moment rather
  // than a trip through the queue's visibility timeout.
  const waitUntil = Date.now() + (options.predecessorWaitMs ?? 10_000);
  while (job && job.pagesPlanned < page && Date.now() < waitUntil) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    job = await ports.jobs.load(jobId);
  }
  if (!job) throw new LabelerError(CODE.job.notFound, `job ${jobId} does not exist`);
  if (job.status !== 'planning' && job.status !== 'running' && job.status !== 'cancelling') {
    return { kind: 'skipped', jobId, reason: `job is ${job.status}` };
  }
  if (job.pagesPlanned > page) return { kind: 'skipped', jobId, reason: `step ${page} was already planned` };
  if (job.status === 'cancelling' && job.pagesPlanned === page) {
    // Cancelled while planning: list no more. The total is what the steps before enqueued,
    // so the job can become cancelled once the workers have accounted for those.
    if (await ports.jobs.stopPlanning(jobId, page)) await ports.jobs.checkCompletion(jobId);
    return { kind: 'skipped', jobId, reason: 'job is cancelling: planning stopped' };
  }
  if (job.pagesPlanned < page) {
    throw new LabelerError(
      CODE.job.planOutOfOrder,
      `plan step ${page} of ${jobId} waits for the one before`,
      {
        permanent: false,
      },
    );
  }

  const clock = options.clock ?? Date.now;
  const started = clock();
  const maxPages = options.maxPagesPerStep ?? Number.POSITIVE_INFINITY;
  let token = message.token;
  let objects = 0;
  let pages = 0;
  try {
    do {
      const listed = await ports.listPage(job.bucket, job.prefix, token, options.pageSize);
      const sample = job.sample;
      const images = listed.objects.filter(
        (o) => !o.key.endsWith('/') && (sample === undefined || inSample(sample, o.key)),
      );
      if (images.length > 0) await ports.sendImages(job, job.bucket, images);
      objects += images.length;
      pages++;
      token = listed.next;
    } while (token && pages < maxPages && clock() - started < options.stepBudgetMs);
  } catch (error) {
    if (error instanceof LabelerError && error.permanent) {
      // A missing bucket or denied listing will not heal by retrying: the job fails, visibly.
      await ports.jobs.fail(jobId, { code: error.code, message: error.message });
      return { kind: 'skipped', jobId, reason: `planning failed: ${error.code}` };
    }
    throw error;
  }
  const done = token === undefined;
  if (!done) await ports.sendPlan({ kind: 'continue', jobId, page: page + 1, token });
  const applied = await ports.jobs.recordPlanned(jobId, page, objects, done);
  if (!applied) return { kind: 'skipped', jobId, reason: `step ${page} was already planned` };
  if (done) await ports.jobs.checkCompletion(jobId);
  return { kind: 'planned', jobId, page, objects, done };
}

/** The prefix's keys, a listing page at a time, through the planner's own port. */
async function* listKeys(ports: PlanPorts, bucket: string, prefix: string): AsyncIterable<readonly string[]> {
  let token: string | undefined;
  do {
    const page = await ports.listPage(bucket, prefix, token, 1000);
    yield page.objects.map((o) => o.key);
    token = page.next;
  } while (token);
}
