import { createClassifyDeps, makeClassifyHandler } from '../../shared/aws/classify-handler.ts';
import { createAwsClients } from '../../shared/aws/clients.ts';
import { SqsBatchConsumer } from '../../shared/aws/sqs-batch-consumer.ts';
import { readQueueUrl, readWorkerConfig } from '../../shared/config.ts';
import { lambdaLog, logger, publishBatchMetrics } from '../../shared/observability.ts';
import { GPU_WORKER } from '../../shared/settings.ts';

// A long-running ECS task: the same classify use case as the Lambda, fed by the bulk queue.
const config = readWorkerConfig(process.env);
const queueUrl = readQueueUrl(process.env);
const clients = createAwsClients({ region: config.region });
const deps = await createClassifyDeps(config, clients, lambdaLog);
logger.info('gpu worker ready', { executionProvider: deps.labeler.classifier.executionProvider, queueUrl });

const consumer = new SqsBatchConsumer({
  sqs: clients.sqs,
  queueUrl,
  queueArn: process.env.QUEUE_ARN ?? queueUrl,
  region: config.region,
  handler: makeClassifyHandler(deps, publishBatchMetrics),
  batchSize: GPU_WORKER.batchSize,
  maxBatchingWindowMs: 2000,
  // Leave a margin inside the visibility timeout so a slow batch is retried, never processed twice at once.
  functionTimeoutMs: GPU_WORKER.visibilityTimeoutSeconds * 800,
  onError: (error) => logger.warn('batch failed; it will be retried', { error: String(error) }),
});
consumer.start();

// ECS sends SIGTERM before stopping a task: finish and acknowledge the batch in flight.
process.once('SIGTERM', () => {
  logger.info('SIGTERM: draining');
  void consumer.stop().then(() => process.exit(0));
});
