import { createAwsClients } from '../../shared/aws/clients.ts';
import { type JobRequest, planJob } from '../../shared/aws/plan-job.ts';
import { readPlanJobConfig } from '../../shared/config.ts';
import { logger } from '../../shared/observability.ts';

const config = readPlanJobConfig(process.env);
const clients = createAwsClients({ region: config.region });

/** Invoked by EventBridge Scheduler with a job request as its input. */
export const handler = async (event: JobRequest) => {
  const planned = await planJob(event, clients, config);
  logger.info('job planned', { ...planned });
  return planned;
};
