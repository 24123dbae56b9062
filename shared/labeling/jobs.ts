import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import type { Top1 } from './drift.ts';
import type { PlanJobsPort } from './plan-job.ts';
import type { ImageResult } from './results.ts';
import type { JobSample, SampleSpec } from './sample.ts';
import type { JobModel } from './stack-models.ts';

/** `lambda`: the classify function (jobs queue); `gpu`: the GPU workers (bulk queue). */
export type JobTarget = 'lambda' | 'gpu';
/** `all`: label every object; `stale`: skip objects already labeled by this model version with the same eTag. */
export type JobMode = 'all' | 'stale';
/**
 * `cancelling`: cancelled, with images not accounted for yet (workers record them
 * `cancelled`, or labeled when already in flight); it becomes `cancelled` once
 * labeled + failed + skipped + cancelled = total. Terminal: succeeded, failed, cancelled.
 */
export type JobStatus = 'planning' | 'running' | 'cancelling' | 'succeeded' | 'failed' | 'cancelled';

/** The states a job ends in: its counts add up to its total (or it failed). */
export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['succeeded', 'failed', 'cancelled']);

/** Whether a worker should drop a job's images (recording them `cancelled`) rather than label them. */
export function isCancelled(status: JobStatus | undefined): boolean {
  return status === 'cancelling' || status === 'cancelled';
}

export interface JobRequest {
  readonly bucket: string;
  readonly prefix: string;
  readonly target: JobTarget;
  readonly mode: JobMode;
  /** Same key => same job (a scheduled run: `${scheduleName}@${scheduledTimeIso}`). */
  readonly idempotencyKey?: string;
  readonly scheduleName?: string;
  /** Why this target, when `--target auto` chose it (the cost model's comparison). */
  readonly targetReason?: string;
  /** Label only this deterministic sample of the prefix (shared/labeling/sample.ts). */
  readonly sample?: SampleSpec;
  /**
   * The hosted model to label with: its name, id or id@version (stack-models.ts);
   * absent: the stack's default model.
   */
  readonly model?: string;
}

export interface JobCounts {
  readonly total: number;
  readonly labeled: number;
  readonly failed: number;
  readonly skipped: number;
  readonly cancelled: number;
}

export interface Job extends JobCounts {
  readonly jobId: string;
  readonly status: JobStatus;
  readonly bucket: string;
  readonly prefix: string;
  readonly target: JobTarget;
  readonly mode: JobMode;
  readonly model: JobModel;
  readonly planningDone: boolean;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly finishedAt?: string;
  readonly scheduleName?: string;
  readonly targetReason?: string;
  /** The sample the job plans (its size, seed and bound); absent: the whole prefix. */
  readonly sample?: JobSample;
  readonly error?: { code: string; message: string };
  /** What the job's workers used so far, counted as they went (decision 0035). */
  readonly usage?: JobUsage;
  /** A finished job's receipt: its usage priced by the cost model (decision 0035). */
  readonly receipt?: JobReceipt;
  /**
   * A finished job's top-1 labels and scores over the images it labeled ok, counted from its
   * outcome markers with its counts (decision 0039); absent when it labeled nothing ok.
   */
  readonly labelSummary?: LabelSummary;
}

/** A job's top-1 label histogram and score summary (decision 0039). */
export interface LabelSummary {
  /** Images labeled ok that the histogram counts. */
  readonly images: number;
  /** Top-1 label → images, labels in order. */
  readonly top1: Readonly<Record<string, number>>;
  readonly meanTop1Score: number;
  /** Share of the images whose top-1 score is under 0.5 (DRIFT.lowScore). */
  readonly shareUnderHalf: number;
}

/**
 * What a job's workers used, each invocation adding its own (decision 0035): requests and
 * DynamoDB units as its metered clients saw them, compute from its measured duration.
 */
export interface JobUsage {
  readonly invocations: number;
  /** Milliseconds the invocations ran: Lambda duration, or a GPU worker's batch time. */
  readonly computeMs: number;
  readonly s3Gets: number;
  readonly s3Puts: number;
  /** The event source's receive and delete per invocation (not the handler's own calls). */
  readonly sqsRequests: number;
  readonly dynamoWriteUnits: number;
  readonly dynamoReadUnits: number;
}

export const JOB_USAGE_FIELDS = [
  'invocations',
  'computeMs',
  's3Gets',
  's3Puts',
  'sqsRequests',
  'dynamoWriteUnits',
  'dynamoReadUnits',
] as const satisfies ReadonlyArray<keyof JobUsage>;

export interface JobReceipt {
  readonly images: { total: number; labeled: number; failed: number; skipped: number; cancelled: number };
  readonly wallSeconds: number;
  /** Images labeled or failed (through the model) per second of wall time. */
  readonly imagesPerSecond: number;
  readonly computeSeconds: number;
  /** Lambda's GB-seconds (target lambda); absent for GPU workers, priced by instance time. */
  readonly lambdaGbSeconds?: number;
  readonly dynamoWriteUnits: number;
  readonly dynamoReadUnits: number;
  readonly s3Requests: { readonly get: number; readonly put: number };
  readonly sqsRequests: number;
  /** $ by service, list prices (shared/labeling/cost-model.ts). */
  readonly dollars: {
    readonly compute: number;
    readonly dynamodb: number;
    readonly s3: number;
    readonly sqs: number;
    readonly total: number;
  };
  readonly dollarsPerThousand: number;
  /** Rekognition DetectLabels' list price per 1,000 images, for comparison. */
  readonly rekognitionPerThousand: number;
}

export interface JobFailure {
  readonly bucket: string;
  readonly key: string;
  readonly error: { code: string; message: string };
}

/** What the CLI (and plan-job handler) use; built by an adapter in shared/aws/ from SDK clients + names. */
export interface JobsService {
  /** Idempotent by idempotencyKey; enqueues the first plan step. */
  start(request: JobRequest): Promise<Job>;
  get(jobId: string): Promise<Job | undefined>;
  /** Newest first. */
  list(options?: { limit?: number }): Promise<Job[]>;
  /** planning|running → cancelling; cancelled once every planned image has an outcome. */
  cancel(jobId: string): Promise<Job>;
  failures(jobId: string): AsyncIterable<JobFailure>;
  /** Every result the job wrote (for `labeler query job`). */
  results(jobId: string): AsyncIterable<ImageResult>;
  /** The job id of a schedule's baseline run (decision 0039); undefined before one finished. */
  scheduleBaseline?(schedule: string): Promise<string | undefined>;
}

/** How one image of a job ended; each is counted once per (job, image). */
export type JobOutcome = 'labeled' | 'failed' | 'skipped' | 'cancelled';

/** What a classify worker needs to know about a job, read briefly cached. */
export interface JobSettings {
  readonly status: JobStatus;
  readonly mode: JobMode;
}

/**
 * Port: the classify side of a job's accounting. Results (labeled / failed) are counted
 * by the results store after it writes them; the other outcomes here, and a result of the
 * job's own found on a redelivery (its count may not have been recorded: decision 0027).
 */
export interface JobLedger {
  settings(jobId: string): Promise<JobSettings | undefined>;
  /**
   * Records an image's outcome once; false when the image already had one. `failed` with
   * `error` is an image without a result (its message ran out of receives).
   */
  record(
    jobId: string,
    image: { bucket: string; key: string },
    outcome: JobOutcome,
    error?: { code: string; message: string },
    /** A `labeled` image's top-1 label and score, kept on its marker (decision 0039). */
    top?: Top1,
  ): Promise<boolean>;
  /**
   * When planning is done and every planned image has an outcome: a running job becomes
   * succeeded, a cancelling one cancelled.
   */
  checkCompletion(jobId: string): Promise<void>;
  /** Adds what one invocation used for the job to its usage (decision 0035). */
  addUsage?(jobId: string, usage: JobUsage): Promise<void>;
}

/** One image's recorded outcome for a job (`failed` carries why). */
export interface JobMarker {
  readonly bucket: string;
  readonly key: string;
  readonly outcome: JobOutcome;
  readonly error?: { code: string; message: string };
  /** A `labeled` image's top-1 label and score (markers written before decision 0039 have none). */
  readonly top?: Top1;
}

/**
 * Port: the jobs table as the jobs service uses it (shared/aws/dynamo-jobs-store.ts): the
 * planning state, the status moves and every image's outcome.
 */
export interface JobsStore extends PlanJobsPort {
  get(jobId: string): Promise<Job | undefined>;
  /** Newest first. */
  list(limit: number): Promise<Job[]>;
  /** planning|running → cancelling; false when the job is in neither. */
  cancel(jobId: string): Promise<boolean>;
  markers(jobId: string): AsyncIterable<JobMarker>;
  /** The job id of a schedule's baseline run: its first to finish with a label summary (decision 0039). */
  scheduleBaseline?(schedule: string): Promise<string | undefined>;
}

/** The images of a job accounted for: the one definition of a job's progress ("done"). */
export function jobTotalDone(counts: JobCounts): number {
  return counts.labeled + counts.failed + counts.skipped + counts.cancelled;
}

/** A job as the results page's API sends it: with `done`, so the page does not count it again. */
export function jobView(job: Job): Job & { readonly done: number } {
  return { ...job, done: jobTotalDone(job) };
}

/**
 * A job over a bucket the stack's labeling roles cannot read would fail every image with
 * access denied: it is refused before anything is planned, saying how to grant the bucket.
 */
export function assertReadableBucket(bucket: string, readable: readonly string[]): void {
  if (readable.includes(bucket)) return;
  throw new LabelerError(
    CODE.job.bucketNotReadable,
    `this stack cannot read s3://${bucket}: its labeling roles read ${readable.map((b) => `s3://${b}`).join(', ')}. ` +
      `To label another bucket, add its name to the "readableBuckets" list in cdk.json's context and deploy ` +
      '(the stack then grants read-only access to it; an SSE-KMS bucket also needs kms:Decrypt on its key)',
  );
}
