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
} as const;

/** Key schema of the results table: one item per (image, model), plus label index items. */
export const RESULTS_TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** GSI answering "images whose label L scored >= s, best first" with one Query. */
  labelIndex: { name: 'by-label', partitionKey: 'labelPk', sortKey: 'labelSk' },
  /** GSI answering "results of job J". */
  jobIndex: { name: 'by-job', partitionKey: 'jobId', sortKey: 'sk' },
} as const;

export const JOBS_TABLE = {
  partitionKey: 'jobId',
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
  batchSize: 8,
  maxBatchingWindowSeconds: 1,
  maxConcurrency: 20,
  maxReceiveCount: 3,
  /** AWS recommends at least six times the function timeout. */
  visibilityTimeoutSeconds: 6 * 60,
} as const;

/** GPU workers consuming the bulk queue. */
export const GPU_WORKER = {
  instanceType: 'g5.xlarge',
  maxTasks: 4,
  batchSize: 32,
  visibilityTimeoutSeconds: 15 * 60,
  maxReceiveCount: 3,
} as const;

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
