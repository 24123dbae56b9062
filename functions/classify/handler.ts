import { createClassifyDeps, makeClassifyHandler } from '../../shared/aws/classify-handler.ts';
import { createAwsClients } from '../../shared/aws/clients.ts';
import { readWorkerConfig } from '../../shared/config.ts';
import { lambdaLog, logger, publishBatchMetrics } from '../../shared/observability.ts';

// Init phase: settings, clients and the model load once per execution environment.
const config = readWorkerConfig(process.env);
const deps = await createClassifyDeps(config, createAwsClients({ region: config.region }), lambdaLog);

export const handler = makeClassifyHandler(deps, (report) => {
  logger.info('batch done', { counts: report.counts, stageMs: report.stageMs });
  publishBatchMetrics(report);
});
