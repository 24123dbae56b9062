import { availableParallelism } from 'node:os';
import { createClassifyDeps, makeClassifyHandler } from '../../shared/aws/classify-handler.ts';
import { createAwsClients } from '../../shared/aws/clients.ts';
import { SqsBatchConsumer } from '../../shared/aws/sqs-batch-consumer.ts';
import { readGpuWorkerConfig } from '../../shared/config.ts';
import { CODE } from '../../shared/error-codes.ts';
import { errorMessage, LabelerError } from '../../shared/errors.ts';
import {
  lambdaLog,
  logger,
  publishBatchMetrics,
  publishExecutionProvider,
} from '../../shared/observability.ts';
import { ENV, GPU_WORKER } from '../../shared/settings.ts';

// A long-running ECS task: the same classify use case as the Lambda, fed by the bulk queue.
// A start-up failure (bad setting, model, or CUDA missing while CPU fallback is off) is
// logged with its code, which the no-CUDA alarm filters on, and exits non-zero so that
// ECS replaces the task instead of it labelling at CPU speed on a GPU instance.
// ECS sends SIGTERM before stopping a task (scale-in, Spot interruption): finish and
// acknowledge the batch in flight; messages gathered but not started go back at once.
// Listening before anything else: a SIGTERM that came before the listener would kill the
// task without draining (a test that signalled right after "ready" caught that window).
let consumer: SqsBatchConsumer | undefined;
process.once('SIGTERM', () => {
  logger.info('SIGTERM: draining');
  void (consumer?.stop() ?? Promise.resolve()).then(() => process.exit(0));
});
// Under the local stack (`labeler local up`) the worker is a child process that must not
// outlive it, even a kill -9: the emulators it talks to went with the stack, and a worker
// left behind would hold its terminal. The stack passes its pid; the worker watches it.
// Not an IPC channel's "disconnect": with tsx's loader hooks, process.channel was not yet
// set when this module ran, so the watch never started and the worker was orphaned.
// SIGKILL, not process.exit: there is nothing left to drain to. On ECS the variable is unset.
const localStackPid = Number(process.env[ENV.localStackPid] ?? 0);
if (localStackPid > 0) {
  setInterval(() => {
    if (process.ppid !== localStackPid) {
      logger.warn('the local stack that started this worker is gone; exiting');
      process.kill(process.pid, 'SIGKILL');
    }
  }, 500).unref();
  // Ctrl-C in the terminal reaches the whole process group: `local up` handles it and
  // stops this worker with SIGTERM (a drain), rather than it dying mid-batch first.
  process.on('SIGINT', () => {});
}

let deps: Awaited<ReturnType<typeof createClassifyDeps>>;
let config: ReturnType<typeof readGpuWorkerConfig>;
let clients: ReturnType<typeof createAwsClients>;
try {
  config = readGpuWorkerConfig(process.env);
  clients = createAwsClients({ region: config.region });
  deps = await createClassifyDeps(config, clients, lambdaLog);
} catch (error) {
  const code = error instanceof LabelerError ? error.code : CODE.startup.failed;
  logger.error('gpu worker cannot start', { code, error: errorMessage(error) });
  process.exit(1);
}
const executionProvider = deps.labeler.classifier.executionProvider;
publishExecutionProvider(executionProvider);
// sharp decodes on libuv's pool, sized once from UV_THREADPOOL_SIZE (4 when unset) before
// this module runs: only whoever launches the process can size it (infra sets it to the
// instance's vCPUs). A smaller pool leaves the GPU waiting on decode: say so.
const decodeThreads = Number(process.env[ENV.uvThreadpoolSize] || 4);
const cores = availableParallelism();
if (decodeThreads < cores) {
  logger.warn('decode runs on fewer threads than the task has cores: start it with UV_THREADPOOL_SIZE', {
    decodeThreads,
    cores,
    [ENV.uvThreadpoolSize]: process.env[ENV.uvThreadpoolSize] ?? null,
  });
}
logger.info('gpu worker ready', {
  executionProvider,
  allowCpuFallback: config.allowCpuFallback,
  decodeThreads,
  cores,
  batchesInFlight: GPU_WORKER.batchesInFlight,
  queueUrl: config.queueUrl,
});

consumer = new SqsBatchConsumer({
  sqs: clients.sqs,
  queueUrl: config.queueUrl,
  queueArn: config.queueArn,
  region: config.region,
  handler: makeClassifyHandler(deps, publishBatchMetrics),
  batchSize: GPU_WORKER.batchSize,
  maxBatchingWindowMs: GPU_WORKER.maxBatchingWindowMs,
  // Decoding batch n+1 (and gathering n+2) while batch n is in the model.
  concurrency: GPU_WORKER.batchesInFlight,
  // Leave a margin inside the visibility timeout so a slow batch is retried, never processed twice at once.
  functionTimeoutMs: GPU_WORKER.visibilityTimeoutSeconds * 800,
  onError: (error) => logger.warn('batch failed; it will be retried', { error: String(error) }),
});
consumer.start();
