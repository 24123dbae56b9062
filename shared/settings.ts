/**
 * The one definition of names and settings. The CDK stack, the local stack, the
 * handlers and the tests all read these, so they cannot drift apart.
 */

/** Logical resource names; the local stack uses them as is, AWS prefixes them with the stack name. */
export const RESOURCE_NAMES = {
  imagesBucket: 'labeler-images',
  resultsBucket: 'labeler-results',
  incomingQueue: 'labeler-incoming',
  incomingDlq: 'labeler-incoming-dlq',
  bulkQueue: 'labeler-bulk',
  bulkDlq: 'labeler-bulk-dlq',
  resultsTable: 'labeler-results',
  jobsTable: 'labeler-jobs',
  /** Plan steps of labeling jobs: `start` requests and self-continuations (decision 0014). */
  planQueue: 'labeler-plan',
  planDlq: 'labeler-plan-dlq',
  /**
   * Images of `lambda`-target jobs, consumed by the classify function through an event
   * source of their own, so a job never queues in front of an upload (decision 0025).
   */
  jobsQueue: 'labeler-jobs-queue',
  jobsDlq: 'labeler-jobs-dlq',
} as const;

/**
 * The queues of one hosted model (decisions 0037, 0038): the first model of a stack keeps the
 * names a one-model stack always had, so adding a model never renames a queue in use; a
 * further model's are `labeler-<name>-jobs`, `-bulk` and their `-dlq`s. The kind last and
 * the name between fixed words: no model name makes one queue's name another's.
 */
export function modelQueueNames(
  name: string,
  first: boolean,
): { jobsQueue: string; jobsDlq: string; bulkQueue: string; bulkDlq: string } {
  if (first) {
    const { jobsQueue, jobsDlq, bulkQueue, bulkDlq } = RESOURCE_NAMES;
    return { jobsQueue, jobsDlq, bulkQueue, bulkDlq };
  }
  const base = `labeler-${name}`;
  return {
    jobsQueue: `${base}-jobs`,
    jobsDlq: `${base}-jobs-dlq`,
    bulkQueue: `${base}-bulk`,
    bulkDlq: `${base}-bulk-dlq`,
  };
}

/** Key schema of the results table: one item per (image, model), plus label index items. */
export const RESULTS_TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** GSI answering "images whose label L scored >= s, best first": one Query per shard, merged by score. */
  labelIndex: {
    name: 'by-label',
    partitionKey: 'labelPk',
    sortKey: 'labelSk',
    /**
     * Index items of one label are spread over this many index keys (a hash of the
     * image picks one), and a label query reads all of them in parallel and merges by
     * score. One key takes at most 1,000 write units/s; a single-label dataset at the
     * stack's maximum writes 1,500 to 4,000 a second (docs/decisions/0011), so 4 keys
     * carry 4,000/s. Changing it moves every image to another key: results written under
     * the old count are not found until they are rewritten.
     */
    shards: 4,
  },
  /**
   * The by-label index of the result item's rank-2 label (decision 0027): the result item
   * itself carries its index keys, rank 1 under labelIndex's attributes, rank 2 under these,
   * so one Put writes a result and its index entries. Only two labels of a softmax can
   * score above 1/3, so for `--min-score` above 1/3 these two ranks answer every query.
   */
  rank2Index: {
    name: 'by-label-2',
    partitionKey: 'labelPk2',
    sortKey: 'labelSk2',
    /** What an entry holds besides keys: enough to answer a label query, a fraction of the item's size. */
    projection: ['bucket', 'key', 'labels'],
  },
} as const;

/**
 * Key schema of the jobs table (decision 0014): per job one job item (`job#<id>`, `job`),
 * and per shard `job#<id>#<n>` one counter item (`count`) plus one marker item per image
 * outcome, so a job's writes spread over `JOBS.counterShards` partitions.
 */
export const JOBS_TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** GSI listing jobs newest first: only job items carry `listPk`, a few writes per job. */
  listIndex: { name: 'by-created', partitionKey: 'listPk', sortKey: 'createdAt' },
} as const;

/** Labeling jobs over an S3 prefix (shared/labeling/plan-job.ts, decision 0014). */
export const JOBS = {
  /**
   * Partitions a job's outcome markers and counters spread over. At 1,000 images/s each
   * takes ~31 markers/s (1 WCU each) and a share of the batches' counter ADDs (decision
   * 0027), far under a partition's 1,000 WCU/s; a status read is one BatchGet of 32 items,
   * and a finished job's marker count one Query per shard.
   */
  counterShards: 32,
  /** Objects per ListObjectsV2 page (S3's maximum). */
  pageSize: 1000,
  /** A plan step lists pages until this much time has passed, then continues itself. */
  stepBudgetMs: 20_000,
  /** Objects per queue message, as S3-event-shaped records. */
  objectsPerMessage: 10,
  /**
   * SendMessageBatch requests a plan step keeps in flight: a 1,000-object page is ten
   * batches, and sent one after another they, not the listing, bound the planner's rate
   * (shared/labeling/capacity-plan.ts plannerRate).
   */
  sendConcurrency: 5,
  /** A worker re-reads a job's status (cancel) at most this often. */
  statusCacheMs: 2000,
  planTimeoutSeconds: 60,
  planVisibilityTimeoutSeconds: 6 * 60,
  planMaxReceiveCount: 5,
  /**
   * The most images a job's finishing recount counts inline, in whichever invocation saw the
   * counters reach the total (decision 0027). A marker is ~150 bytes, so a 1 MB consistent
   * Query page holds ~7,000; at 20-50 ms a page that is 140,000-350,000 markers/s, so
   * 200,000 markers take ~0.6-1.5 s, well inside any invocation. Above it, one chain of
   * recount steps on the plan queue counts them.
   */
  inlineRecountMax: 200_000,
  /**
   * Marker pages one recount step reads: 50 pages of up to ~7,000 markers are up to 350,000
   * markers, 1-2.5 s at 20-50 ms a page, far inside the plan function's 60 s; a ten-million
   * image job takes ~30 steps.
   */
  recountPagesPerStep: 50,
  /** A recount chain's flag older than this is taken for a lost chain: the next check starts another. */
  recountStaleMs: 15 * 60_000,
} as const;

/** Drift of a schedule's runs (decision 0039): the top-1 label histogram of each run against its first. */
export const DRIFT = {
  /**
   * Jensen–Shannon divergence (base 2, in [0, 1]) over which a run counts as drifted and the
   * `LabelDrift` alarm fires. 0.05: "Bag" going from 8 % to 40 % of a 10-class histogram
   * (the others shrinking in proportion) is 0.108, from 8 % to 20 % is 0.022; two runs of
   * the same distribution differ by sampling alone by 0.022 (99th percentile) at 300 images a
   * run and 0.008 at 1,000, so a nightly run of a few hundred images or more alarms on a
   * shift like the first and not on noise. Runs of ~100 images are noisier (0.078 at the
   * 99th percentile): a schedule of so few images alarms on noise now and then.
   */
  threshold: 0.05,
  /** The score summary's "low" top-1 score: the share of top-1 scores under it is recorded. */
  lowScore: 0.5,
  /** CloudWatch metric (namespace Labeler, dimension Schedule) with each finished run's divergence. */
  metricName: 'LabelDrift',
} as const;

/** Prefix under the results bucket where each batch writes one JSON Lines object. */
export const RESULTS_PREFIX = 'results';

/** Only keys under this prefix (and with these suffixes, if any) trigger labeling. */
export const UPLOAD_FILTER = {
  prefix: 'images/',
  suffixes: [] as readonly string[],
} as const;

/** The classify function and the event source mapping that feeds it. */
export const CLASSIFY = {
  memoryMb: 2048,
  timeoutSeconds: 60,
  /** The most upload messages per invocation, and images per inference run; a slow model gets fewer. */
  batchSize: 8,
  maxBatchingWindowSeconds: 1,
  maxConcurrency: 20,
  /**
   * Deliveries before a message is parked in the dead-letter queue. Permanent failures
   * (bad images) never come back, so only transient ones use receives: a throttled
   * DynamoDB write during a burst, an S3 5xx, a timeout. Three receives could park a
   * valid image after one burst; five ride out a burst of several minutes at the
   * visibility timeout, while a message that fails five times is worth a look.
   */
  maxReceiveCount: 5,
  /**
   * Share of the timeout an invocation's expected work may take (images × seconds per
   * image, sized per model by shared/labeling/invocation-budget.ts): a slower vCPU, a cold
   * cache or a large image still ends well inside the timeout.
   */
  workShareOfTimeout: 0.5,
  /** Left for the result writes, the export and job accounting after the last image's inference. */
  deadlineWriteReserveMs: 5000,
  /** AWS recommends at least six times the function timeout. */
  visibilityTimeoutSeconds: 6 * 60,
  /**
   * V8's heap growth after a full GC in a process that labels: the next limit is
   * (1 + this / 100) times the live heap. V8 picks the factor from how fast JavaScript
   * allocates per millisecond of wall time, and a handler mostly waiting for inference looks
   * idle by that clock, so V8 chooses its minimum, 1.1: a batch's SDK objects and socket
   * buffers then fill the old generation and start a mark-compact every few images. 3.0
   * cut the handler's CPU per image by 5 to 12 % for about 30 MB more peak RSS (decision 0022).
   */
  heapGrowingPercent: 200,
} as const;

/**
 * The classify function's second event source: the jobs queue (`lambda`-target job images).
 * Its own concurrency, beside CLASSIFY.maxConcurrency for uploads, is what keeps a
 * 10-million-image job from delaying a fresh upload: each event source mapping scales its
 * own pollers and invocations up to its own maximum.
 */
export const JOB_IMAGES = {
  /**
   * Concurrent classify invocations on job images (cdk.json `jobsMaxConcurrency`). 100 labels
   * 10,000,000 B0 images within an hour (shared/labeling/capacity-plan.ts, bench/SCALING-JOBS.md)
   * while using a tenth of the account's default 1,000 concurrent executions.
   */
  maxConcurrency: 100,
  /** A busy jobs queue fills each batch at once; an idle one should not hold a job's last images. */
  maxBatchingWindowSeconds: 1,
} as const;

/**
 * Warm throughput of the tables (cdk.json `resultsTableWarmWrites`, `jobsTableWarmWrites`):
 * the write units per second each takes from the first second, where a new on-demand
 * table starts at 4,000 and takes time to double. Sized with JOB_IMAGES.maxConcurrency for
 * 10,000,000 images in an hour at the planning footprint (shared/labeling/capacity-plan.ts);
 * raising a value above 4,000 is a one-time charge at deploy time (DynamoDB pricing).
 */
export const TABLE_WARM_THROUGHPUT = {
  /** The table and its by-label index (whose writes back-pressure the table's). */
  resultsWriteUnitsPerSecond: 10_000,
  jobsWriteUnitsPerSecond: 4_000,
  /** A new on-demand table's read warm throughput, stated because CloudFormation sets both. */
  readUnitsPerSecond: 12_000,
} as const;

/** GPU workers consuming the bulk queue. */
export const GPU_WORKER = {
  /**
   * EC2 instance types the GPU Auto Scaling group may launch, most preferred first (on-demand
   * launches take them in this order; a sold-out or unavailable type falls through to the
   * next). The task is sized for the smallest; `jobs start --target auto` prices the first.
   */
  instanceTypes: ['g5.xlarge', 'g6.xlarge'] as readonly string[],
  /** Spot instances instead of on-demand (`-c gpuSpot=true`): cheaper, interruptible. */
  spot: false,
  maxTasks: 4,
  batchSize: 32,
  visibilityTimeoutSeconds: 15 * 60,
  /** As CLASSIFY.maxReceiveCount: throttled writes are transient and must not park valid images. */
  maxReceiveCount: 5,
  /** How long a task keeps gathering messages into one batch once the first arrives. */
  maxBatchingWindowMs: 2000,
  /**
   * Batches one task works on at once: one gathering from the queue, one decoding, one in
   * the model or writing its results, so decode never waits for inference or the queue
   * (decision 0016). They share one inference thread, which runs them one after another.
   */
  batchesInFlight: 3,
  /**
   * Whether a GPU worker configured for CUDA may run on the CPU when CUDA cannot load.
   * Off: a task without its GPU exits at start-up (ECS replaces it, the alarm fires)
   * rather than label at CPU speed on a GPU instance's bill.
   */
  allowCpuFallback: false,
} as const;

/**
 * Every environment variable a process of the pipeline reads, named once: infra sets
 * them from this map, shared/config.ts reads them through it, and
 * test/infra/env-contract.test.ts checks that each entry point gets exactly what it reads.
 */
export const ENV = {
  region: 'AWS_REGION',
  resultsTable: 'RESULTS_TABLE',
  resultsBucket: 'RESULTS_BUCKET',
  imagesBucket: 'IMAGES_BUCKET',
  jobsTable: 'JOBS_TABLE',
  bulkQueueUrl: 'BULK_QUEUE_URL',
  bulkQueueArn: 'BULK_QUEUE_ARN',
  planQueueUrl: 'PLAN_QUEUE_URL',
  /**
   * The models a stack hosts, their queues and its default (shared/labeling/stack-models.ts,
   * JSON): how the plan-job function routes a job's images and what the query API defaults to.
   */
  stackModels: 'LABELER_STACK_MODELS',
  modelDir: 'MODEL_DIR',
  executionProviders: 'EXECUTION_PROVIDERS',
  allowCpuFallback: 'ALLOW_CPU_FALLBACK',
  intraOpThreads: 'INTRA_OP_THREADS',
  topK: 'TOP_K',
  inferenceBatchSize: 'INFERENCE_BATCH_SIZE',
  decodeConcurrency: 'DECODE_CONCURRENCY',
  maxImageBytes: 'MAX_IMAGE_BYTES',
  maxImagePixels: 'MAX_IMAGE_PIXELS',
  /** Read by the Powertools logger. */
  logLevel: 'LOG_LEVEL',
  /** Read by shared/observability.ts (logger and metrics service name). */
  serviceName: 'POWERTOOLS_SERVICE_NAME',
  /** Read by libuv when its pool first starts: sharp decodes on that pool (4 threads if unset). */
  uvThreadpoolSize: 'UV_THREADPOOL_SIZE',
  /** Read by onnxruntime-node. */
  ortDisableTelemetry: 'ORT_DISABLE_TELEMETRY',
  /**
   * Read by the AWS SDK (a GPU worker under the local stack); shared/aws/clients.ts also
   * reads it to make the SQS client prefer it over a queue URL's host.
   */
  sqsEndpointUrl: 'AWS_ENDPOINT_URL_SQS',
  /**
   * Set only by the local stack on the GPU worker it starts: the pid of `labeler local up`,
   * whose death the worker watches for (it must not outlive the stack, even a kill -9).
   */
  localStackPid: 'LABELER_LOCAL_STACK_PID',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];

/** Variables no config reader parses because a library or runtime reads them itself. */
export const RUNTIME_ENV: readonly EnvName[] = [
  ENV.logLevel,
  ENV.serviceName,
  ENV.uvThreadpoolSize,
  ENV.ortDisableTelemetry,
  ENV.sqsEndpointUrl,
  ENV.localStackPid,
];

/**
 * The vCPUs a Lambda function's process sees: one full vCPU per 1769 MB, up to 6 at
 * 10,240 MB (a 2048 MB function sees 2 cores and gets about 1.16 vCPU of time).
 */
export function lambdaVcpus(memoryMb: number): number {
  return Math.min(6, Math.max(1, Math.ceil(memoryMb / 1769)));
}

/**
 * vCPUs and memory (GiB) of the single-GPU NVIDIA instance types a worker may run on
 * (EC2 instance type documentation). One task per instance uses its one GPU; the
 * multi-GPU sizes would leave GPUs idle, so they are not listed.
 */
export const GPU_INSTANCE_SIZES: Readonly<Record<string, { vcpus: number; memoryGiB: number }>> = {
  'g4dn.xlarge': { vcpus: 4, memoryGiB: 16 },
  'g4dn.2xlarge': { vcpus: 8, memoryGiB: 32 },
  'g4dn.4xlarge': { vcpus: 16, memoryGiB: 64 },
  'g4dn.8xlarge': { vcpus: 32, memoryGiB: 128 },
  'g4dn.16xlarge': { vcpus: 64, memoryGiB: 256 },
  'g5.xlarge': { vcpus: 4, memoryGiB: 16 },
  'g5.2xlarge': { vcpus: 8, memoryGiB: 32 },
  'g5.4xlarge': { vcpus: 16, memoryGiB: 64 },
  'g5.8xlarge': { vcpus: 32, memoryGiB: 128 },
  'g5.16xlarge': { vcpus: 64, memoryGiB: 256 },
  'g6.xlarge': { vcpus: 4, memoryGiB: 16 },
  'g6.2xlarge': { vcpus: 8, memoryGiB: 32 },
  'g6.4xlarge': { vcpus: 16, memoryGiB: 64 },
  'g6.8xlarge': { vcpus: 32, memoryGiB: 128 },
  'g6.16xlarge': { vcpus: 64, memoryGiB: 256 },
  'g6e.xlarge': { vcpus: 4, memoryGiB: 32 },
  'g6e.2xlarge': { vcpus: 8, memoryGiB: 64 },
  'g6e.4xlarge': { vcpus: 16, memoryGiB: 128 },
  'g6e.8xlarge': { vcpus: 32, memoryGiB: 256 },
  'g6e.16xlarge': { vcpus: 64, memoryGiB: 512 },
};

/** Labeling defaults shared by every worker and the CLI. */
export const LABELING = {
  topK: 5,
  /**
   * Images per inference run. At 2 threads, B0 batches of 8 and 16 run within about 5 %
   * of each other across benchmark runs (135-151 against 141-155 images/s), while 16
   * costs 200 MB more peak RSS and twice the latency (bench/RESULTS.md, section 1).
   * One SQS batch (CLASSIFY.batchSize) is one run.
   */
  batchSize: 8,
  /**
   * Labels scoring below this are kept in the result but not written to the by-label
   * index: each indexed label costs 3 DynamoDB write units (a transactional put plus its
   * GSI write). On the bundled samples 1.31 of the top 5 labels score >= 0.05, so an
   * image costs about 6 write units instead of 17. Label queries start at this score.
   */
  indexMinScore: 0.05,
} as const;

/** Image input limits. */
export const IMAGE_LIMITS = {
  maxBytes: 32 * 1024 * 1024,
  maxPixels: 50_000_000,
} as const;

/** Thresholds of the operator alarms that are not a queue's own age (infra/constructs/monitoring.ts). */
export const ALARMS = {
  /** Share of images failing (ImagesFailed / all images labeled or failed) that pages someone. */
  failedImagesShare: 0.05,
  /** Window the failed share is measured over. */
  failedImagesWindowMinutes: 15,
  /** Fewer images than this in the window never raise the failed-share alarm (one bad image of three). */
  failedImagesMinCount: 20,
  /** Minutes the GPU service may run fewer tasks than desired (an instance boots and pulls the image in 5-10). */
  gpuTasksShortMinutes: 15,
  /** Minutes the GPU Auto Scaling group may have fewer instances in service than desired. */
  gpuInstancesShortMinutes: 15,
  /** Minutes the bulk queue may hold work while nothing is deleted from it (cold start included). */
  bulkNoProgressMinutes: 30,
  /**
   * Minutes the jobs queue may hold work while nothing is deleted from it. A running job
   * deletes messages all the time, so a long job never raises it; its age never pages.
   */
  jobsNoProgressMinutes: 15,
} as const;
