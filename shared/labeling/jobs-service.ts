import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import { jobReceipt } from './cost-model.ts';
import {
  assertReadableBucket,
  isCancelled,
  type Job,
  type JobFailure,
  type JobRequest,
  type JobsService,
  type JobsStore,
} from './jobs.ts';
import { type PlanPorts, parseJobRequest, startJob } from './plan-job.ts';
import type { ImageResult, ResultsStore } from './results.ts';

export interface JobsServicePorts {
  /** Planning's ports; `plan.jobs` is `store`. */
  readonly plan: PlanPorts;
  readonly store: JobsStore;
  readonly results: ResultsStore;
  /** Buckets the stack's labeling roles may read; a job over any other is refused at start. */
  readonly readableBuckets: readonly string[];
  /** False when nothing consumes the GPU queue: a job with target `gpu` is refused at start. */
  readonly gpuWorkers?: boolean;
}

/** The jobs use cases over their ports (wired on the AWS SDK by shared/aws/jobs-service.ts). */
export function jobsService(ports: JobsServicePorts): JobsService {
  const { store, results } = ports;
  const mustGet = async (jobId: string): Promise<Job> => {
    const job = await store.get(jobId);
    if (!job) throw new LabelerError(CODE.job.notFound, `job ${jobId} does not exist`);
    return job;
  };
  return {
    async start(request: JobRequest) {
      const parsed = parseJobRequest(request);
      assertReadableBucket(parsed.bucket, ports.readableBuckets);
      if (parsed.target === 'gpu' && ports.gpuWorkers === false) {
        throw new LabelerError(
          CODE.job.noGpuWorker,
          'this stack runs no GPU worker: start the local stack with "labeler local up --gpu-worker", or use --target lambda',
        );
      }
      const { jobId } = await startJob(parsed, ports.plan);
      return mustGet(jobId);
    },
    get: async (jobId) => withReceipt(await store.get(jobId)),
    list: async (options) => (await store.list(options?.limit ?? 20)).map((job) => withReceipt(job) as Job),
    async cancel(jobId) {
      const job = await mustGet(jobId);
      if (isCancelled(job.status)) return job;
      if (!(await store.cancel(jobId))) {
        const now = await mustGet(jobId);
        if (isCancelled(now.status)) return now;
        throw new LabelerError(
          CODE.job.notCancellable,
          `job ${jobId} is ${now.status}; only a planning or running job can be cancelled`,
        );
      }
      // Cancelling until every planned image is accounted for; if they all already are
      // (the last worker counted before the cancel landed), it is cancelled now.
      await store.checkCompletion(jobId);
      return mustGet(jobId);
    },
    async *failures(jobId): AsyncIterable<JobFailure> {
      await mustGet(jobId);
      for await (const marker of store.markers(jobId)) {
        if (marker.outcome === 'failed') {
          yield {
            bucket: marker.bucket,
            key: marker.key,
            error: marker.error ?? { code: 'unknown', message: 'no error recorded' },
          };
        }
      }
    },
    ...(store.scheduleBaseline
      ? {
          scheduleBaseline: (schedule: string) =>
            store.scheduleBaseline?.(schedule) ?? Promise.resolve(undefined),
        }
      : {}),
    async *results(jobId): AsyncIterable<ImageResult> {
      const job = await mustGet(jobId);
      let batch: Array<{ bucket: string; key: string }> = [];
      const flush = async function* () {
        const found = await results.findExisting(batch, job.model);
        batch = [];
        for (const result of found.values()) if (result.jobId === jobId) yield result;
      };
      for await (const marker of store.markers(jobId)) {
        if (marker.outcome !== 'labeled' && marker.outcome !== 'failed') continue;
        batch.push({ bucket: marker.bucket, key: marker.key });
        if (batch.length === 100) yield* flush();
      }
      if (batch.length > 0) yield* flush();
    },
  };
}

/** A finished job carries its receipt (decision 0035): its usage priced by the cost model. */
function withReceipt(job: Job | undefined): Job | undefined {
  const receipt = job && jobReceipt(job);
  return receipt ? { ...job, receipt } : job;
}
