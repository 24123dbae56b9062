import { AsyncLocalStorage } from 'node:async_hooks';
import { setFlagsFromString } from 'node:v8';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { WorkerConfig } from '../config.ts';
import type { BatchReport, ClassifyDeps, ClassifyLog } from '../labeling/classify-records.ts';
import { classifyRecords } from '../labeling/classify-records.ts';
import { createImageLabeler } from '../labeling/create-labeler.ts';
import type { DriftMetric } from '../labeling/drift.ts';
import { imageCostOf, sizeInvocation } from '../labeling/invocation-budget.ts';
import { stdoutDriftMetric } from '../observability.ts';
import { CLASSIFY } from '../settings.ts';
import type { AwsClients } from './clients.ts';
import { DynamoJobsStore } from './dynamo-jobs-store.ts';
import { DynamoResultsStore } from './dynamo-results-store.ts';
import { sendPlan } from './plan-job.ts';
import { S3ExportStore, S3ImageStore } from './s3-stores.ts';
import { invocationUsage, meterCalls, UsageMeter, type UsageSnapshot } from './usage-meter.ts';

/**
 * Sets V8's heap growth for a labeling process (CLASSIFY.heapGrowingPercent). At run time
 * because Node refuses V8 flags in NODE_OPTIONS, the only way a Lambda function's settings
 * reach the runtime's command line; V8 reads this flag each time it sets the next limit.
 */
export function setLabelingHeapGrowth(): void {
  setFlagsFromString(`--heap-growing-percent=${CLASSIFY.heapGrowingPercent}`);
}

const EMPTY_USAGE: UsageSnapshot = { requests: {}, units: {}, refusedWrites: 0 };

/** The classify use case's ports, and how much of an invocation's time its images need at the end. */
export type ClassifyWorker = ClassifyDeps & {
  readonly deadlineReserveMs: number;
  /** Runs one invocation with a meter of its own (decision 0035). */
  readonly metered?: <T>(run: () => Promise<T>) => Promise<T>;
};

/** Builds the classify use case's ports from settings and SDK clients: model loaded once per process. */
export async function createClassifyDeps(
  config: WorkerConfig,
  clients: AwsClients,
  log: ClassifyLog,
  /** Where a scheduled job this process finishes sends its drift (decision 0039). @default EMF on stdout */
  driftMetric: DriftMetric = stdoutDriftMetric,
): Promise<ClassifyWorker> {
  setLabelingHeapGrowth();
  const labeler = await createImageLabeler(
    {
      modelDir: config.modelDir,
      executionProviders: config.executionProviders,
      intraOpThreads: config.intraOpThreads,
      requireProvider: config.allowCpuFallback === false,
      topK: config.topK,
      batchSize: config.batchSize,
      concurrency: config.concurrency,
      maxBytes: config.maxBytes,
      maxPixels: config.maxPixels,
    },
    log,
  );
  // Each invocation meters its own calls, concurrent ones (GPU worker batches) included, for
  // the receipts of the jobs it labels for (decision 0035).
  const invocation = new AsyncLocalStorage<UsageMeter>();
  if (config.jobsTable) {
    for (const client of [clients.s3, clients.dynamo]) {
      meterCalls(client as never, () => invocation.getStore(), 'labelerJobUsage');
    }
  }
  return {
    ...(config.jobsTable
      ? {
          usage: { snapshot: () => invocationUsage(invocation.getStore()?.snapshot() ?? EMPTY_USAGE) },
          metered: <T>(run: () => Promise<T>) => invocation.run(new UsageMeter(), run),
        }
      : {}),
    labeler,
    deadlineReserveMs: sizeInvocation(imageCostOf(labeler.classifier.manifest)).deadlineReserveMs,
    images: new S3ImageStore(clients.s3, config.maxBytes),
    results: new DynamoResultsStore(clients.db, config.resultsTable, undefined, config.jobsTable),
    exports: new S3ExportStore(clients.s3, config.resultsBucket),
    log,
    ...(config.jobsTable ? { jobs: jobsStore(config, config.jobsTable, clients, driftMetric) } : {}),
    ...(config.maxReceiveCount === undefined ? {} : { maxReceiveCount: config.maxReceiveCount }),
  };
}

/** The worker's jobs store: with the plan queue, a big job's finishing recount goes there in steps. */
function jobsStore(
  config: WorkerConfig,
  jobsTable: string,
  clients: AwsClients,
  driftMetric: DriftMetric,
): DynamoJobsStore {
  const planQueueUrl = config.planQueueUrl;
  return new DynamoJobsStore(clients.db, jobsTable, undefined, {
    driftMetric,
    ...(planQueueUrl ? { sendRecount: (message) => sendPlan(clients, planQueueUrl, message) } : {}),
    ...(config.inlineRecountMax === undefined ? {} : { inlineRecountMax: config.inlineRecountMax }),
    ...(config.recountPageLimit === undefined ? {} : { recountPageLimit: config.recountPageLimit }),
  });
}

/** What the handler reads of Lambda's context object; the local stack's mappings pass the same. */
export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

/**
 * The SQS → classify contract: per-record outcomes, transient failures reported back. With
 * a context, images stop starting when the invocation runs short of time (decision 0025).
 */
export function makeClassifyHandler(
  deps: ClassifyDeps & {
    readonly deadlineReserveMs?: number;
    readonly metered?: <T>(run: () => Promise<T>) => Promise<T>;
  },
  onReport?: (report: BatchReport, event: SQSEvent) => void,
): (event: SQSEvent, context?: InvocationContext) => Promise<SQSBatchResponse> {
  return async (event, context) => {
    const deadline = context
      ? { remainingMs: () => context.getRemainingTimeInMillis(), reserveMs: deps.deadlineReserveMs ?? 0 }
      : undefined;
    const run = () => classifyRecords(event.Records, deadline ? { ...deps, deadline } : deps);
    const report = await (deps.metered ? deps.metered(run) : run());
    onReport?.(report, event);
    return { batchItemFailures: report.failedMessageIds.map((itemIdentifier) => ({ itemIdentifier })) };
  };
}
