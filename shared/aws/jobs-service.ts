import type { JobsService } from '../labeling/jobs.ts';
import { jobsService } from '../labeling/jobs-service.ts';
import type { AwsClients } from './clients.ts';
import { DynamoResultsStore } from './dynamo-results-store.ts';
import { createPlanPorts, type JobsResources } from './plan-job.ts';

export type { JobsResources } from './plan-job.ts';

/** JobsService on the AWS SDK: the jobs table, the plan queue, the results table. */
export function createJobsService(
  clients: AwsClients,
  names: JobsResources,
  region = 'us-east-1',
): JobsService {
  const plan = createPlanPorts(clients, names, region);
  return jobsService({
    plan,
    store: plan.store,
    results: new DynamoResultsStore(clients.db, names.resultsTable),
    readableBuckets: names.readableBuckets,
    ...(names.gpuWorkers === undefined ? {} : { gpuWorkers: names.gpuWorkers }),
  });
}
