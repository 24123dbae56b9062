import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import {
  assertReadableBucket,
  isCancelled,
  type Job,
  type JobFailure,
  type JobRequest,
  type JobsService,
} from '../labeling/jobs.ts';
import { parseJobRequest, startJob } from '../labeling/plan-job.ts';
import type { ImageResult, ModelRef } from '../labeling/results.ts';
import type { AwsClients } from './clients.ts';
import { DynamoResultsStore } from './dynamo-results-store.ts';
import { createPlanPorts, type JobsResources } from './plan-job.ts';

export type { JobsResources } from './plan-job.ts';

/** JobsService on the AWS SDK: the jobs table, the plan queue, the results table. */
export function createJobsService(
  clients: AwsClients,
  names: JobsResources,
  model: ModelRef,
  region = 'us-east-1',
): JobsService {
  const ports = createPlanPorts(clients, names, model, region);
  const store = ports.store;
  const results = new DynamoResultsStore(clients.db, names.resultsTable);
  const mustGet = async (jobId: string): Promise<Job> => {
    const job = await store.get(jobId);
    if (!job) throw new LabelerError(CODE.job.notFound, `job ${jobId} does not exist`);
    return job;
  };
  return {
    async start(request: JobRequest) {
      const parsed = parseJobRequest(request);
      assertReadableBucket(parsed.bucket, names.readableBuckets);
      if (parsed.target === 'gpu' && names.gpuWorkers === false) {
        throw new LabelerError(
          CODE.job.noGpuWorker,
          'this stack runs no GPU worker: start the local stack with "labeler local up --gpu-worker", or use --target lambda',
        );
      }
      const { jobId } = await startJob(parsed, ports);
      return mustGet(jobId);
    },
    get: (jobId) => store.get(jobId),
    list: (options) => store.list(options?.limit ?? 20),
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
