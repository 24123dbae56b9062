import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createAwsClients } from '../../shared/aws/clients.ts';
import { createPlanPorts } from '../../shared/aws/plan-job.ts';
import { readPlanJobConfig } from '../../shared/config.ts';
import { CODE } from '../../shared/error-codes.ts';
import { errorMessage, LabelerError } from '../../shared/errors.ts';
import { planStep } from '../../shared/labeling/plan-job.ts';
import { logger } from '../../shared/observability.ts';
import { JOBS } from '../../shared/settings.ts';

const config = readPlanJobConfig(process.env);
const clients = createAwsClients({ region: config.region });
// Each job's images go to its model's queues; a slow model's messages carry fewer objects
// (sized at synthesis from its manifest), so one invocation's work fits its timeout.
const ports = createPlanPorts(clients, config, config.region);

/**
 * Consumes the plan queue (batch size 1): `start` requests from the CLI and EventBridge
 * Scheduler, and the job's own `continue` steps. A step leaves time for its sends and
 * record inside the function timeout.
 */
export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const batchItemFailures: Array<{ itemIdentifier: string }> = [];
  for (const record of event.Records) {
    try {
      const outcome = await planStep(record.body, ports, {
        pageSize: JOBS.pageSize,
        stepBudgetMs: JOBS.stepBudgetMs,
      });
      logger.info('plan step', { ...outcome });
    } catch (error) {
      // Retried, then parked in the plan DLQ where it stays visible (a malformed message, a vanished job).
      const code = error instanceof LabelerError ? error.code : CODE.internal.unexpected;
      logger.warn('plan step failed; the message goes back to the queue', {
        code,
        error: errorMessage(error),
      });
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
};
