import { Duration } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  type InvocationSizing,
  imageCostOf,
  sizeInvocation,
} from '../../shared/labeling/invocation-budget.ts';
import { readManifestSync } from '../../shared/model/manifest.ts';
import { CLASSIFY, ENV, JOB_IMAGES, lambdaVcpus, RESULTS_PREFIX } from '../../shared/settings.ts';
import { HANDLERS, type LabelerImage } from '../image.ts';
import { bindBucketObjects, bindQueue, bindTable, lambdaWorkload, type Workload } from './env-binding.ts';
import { grantImageReads } from './grants.ts';
import { LabelerFunction } from './labeler-function.ts';

/** What a worker that labels images does on the results table (shared/aws/dynamo-results-store.ts). */
export const RESULT_WRITER_ACTIONS = [
  'dynamodb:BatchGetItem',
  'dynamodb:PutItem',
  'dynamodb:DeleteItem',
] as const;

/**
 * What job accounting does on the jobs table (shared/aws/dynamo-jobs-store.ts): read a
 * job and its counter shards, add to a counter and write an image's outcome marker, count
 * the markers when the counters reach the total (a Query per shard: decision 0027), add an
 * invocation's usage (decision 0035) and move the job's status.
 */
export const JOB_ACCOUNTING_ACTIONS = [
  'dynamodb:BatchGetItem',
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:Query',
] as const;

/**
 * What every labeling worker (the classify function, the GPU task) writes: the JSON Lines
 * export, the results and, for job images, the job accounting and usage (decisions 0027,
 * 0035). Each grant travels with the variable that names its resource.
 */
export function bindResultWriter(
  workload: Workload,
  resources: { resultsBucket: s3.IBucket; resultsTable: dynamodb.ITable; jobsTable: dynamodb.ITable },
): void {
  bindBucketObjects(
    workload,
    ENV.resultsBucket,
    resources.resultsBucket,
    ['s3:PutObject'],
    `${RESULTS_PREFIX}/*`,
    'Writes one JSON Lines object per batch under the results prefix; key names are generated, PutObject only.',
  );
  // Idempotency check (BatchGetItem), then one TransactWriteItems per image, which IAM
  // authorises per contained action: Put the result and label items, Delete stale ones.
  bindTable(workload, ENV.resultsTable, resources.resultsTable, RESULT_WRITER_ACTIONS);
  // Job images are counted in the result's transaction; cancel is read per job.
  bindTable(workload, ENV.jobsTable, resources.jobsTable, JOB_ACCOUNTING_ACTIONS);
}

/** Where the model lives inside the image (functions/Dockerfile copies it there). */
export const IMAGE_MODEL_DIR = '/opt/model';

export interface ClassifyProps {
  readonly image: LabelerImage;
  /**
   * Queue of S3 upload events: given to the stack's default model only (decision 0038).
   * @default - no upload event source
   */
  readonly queue?: sqs.IQueue;
  /** Queue of `lambda`-target job images: a second event source with its own concurrency. */
  readonly jobsQueue: sqs.IQueue;
  readonly imagesBucket: s3.IBucket;
  /**
   * Buckets besides the images bucket whose objects jobs may label (cdk.json `readableBuckets`).
   * @default - none
   */
  readonly readableBuckets?: readonly s3.IBucket[];
  readonly resultsBucket: s3.IBucket;
  readonly resultsTable: dynamodb.ITable;
  /** Where the images of labeling jobs are counted. */
  readonly jobsTable: dynamodb.ITable;
  /**
   * The plan queue: a big job's finishing recount is sent there as paged steps (decision 0027).
   * @default - none: every recount inline
   */
  readonly planQueue?: sqs.IQueue;
  /**
   * ONNX Runtime intra-op threads. Lambda grants one vCPU per 1769 MB.
   * @default - the vCPUs the memory size buys (lambdaVcpus)
   */
  readonly intraOpThreads?: number;
  /**
   * Log level.
   * @default 'INFO'
   */
  readonly logLevel?: string;
  /**
   * The jobs queue's event source maximum concurrency (cdk.json `jobsMaxConcurrency`).
   * @default JOB_IMAGES.maxConcurrency
   */
  readonly jobsMaxConcurrency?: number;
  /**
   * Batch sizes and deadline reserve of the baked-in model.
   * @default - sized from the image's model manifest
   */
  readonly sizing?: InvocationSizing;
  /**
   * Powertools service name (logs, metrics' `service` dimension).
   * @default 'labeler-classify'
   */
  readonly serviceName?: string;
}

/**
 * The classify function: labels the images named by S3 upload events, fed by an
 * SQS event source that reports partial batch failures. Sizes come from CLASSIFY.
 */
export class Classify extends Construct {
  readonly function: LabelerFunction;
  /** Uploads: the incoming queue; the default model's function only. */
  readonly eventSource: SqsEventSource | undefined;
  /** Jobs: the jobs queue, scaled on its own so a job never delays an upload. */
  readonly jobsEventSource: SqsEventSource;
  /** Batch sizes and deadline reserve, from the baked-in model's cost per image. */
  readonly sizing: InvocationSizing;

  constructor(scope: Construct, id: string, props: ClassifyProps) {
    super(scope, id);
    this.function = new LabelerFunction(this, 'Function', {
      image: props.image,
      handler: HANDLERS.classify,
      serviceName: props.serviceName ?? 'labeler-classify',
      memorySize: CLASSIFY.memoryMb,
      timeout: Duration.seconds(CLASSIFY.timeoutSeconds),
      logLevel: props.logLevel,
      environment: {
        [ENV.modelDir]: IMAGE_MODEL_DIR,
        [ENV.ortDisableTelemetry]: '1',
        [ENV.intraOpThreads]: String(props.intraOpThreads ?? lambdaVcpus(CLASSIFY.memoryMb)),
      },
    });
    const workload = lambdaWorkload(this.function);

    // How much one invocation takes on follows from the model (decision 0025).
    const sizing = props.sizing ?? sizeInvocation(imageCostOf(readManifestSync(props.image.modelDir)));
    this.sizing = sizing;
    this.eventSource =
      props.queue &&
      new SqsEventSource(props.queue, {
        batchSize: sizing.uploadBatchSize,
        maxBatchingWindow: Duration.seconds(CLASSIFY.maxBatchingWindowSeconds),
        maxConcurrency: CLASSIFY.maxConcurrency,
        reportBatchItemFailures: true,
      });
    if (this.eventSource) this.function.addEventSource(this.eventSource);
    this.jobsEventSource = new SqsEventSource(props.jobsQueue, {
      batchSize: sizing.jobBatchSize,
      maxBatchingWindow: Duration.seconds(JOB_IMAGES.maxBatchingWindowSeconds),
      maxConcurrency: props.jobsMaxConcurrency ?? JOB_IMAGES.maxConcurrency,
      reportBatchItemFailures: true,
    });
    this.function.addEventSource(this.jobsEventSource);

    // Each S3 event and job message names its bucket and key: they are not variables.
    // Uploads arrive under images/, but a job labels any prefix of a bucket it may read.
    grantImageReads((s) => this.function.addToRolePolicy(s), this.function.role ?? this.function, [
      props.imagesBucket,
      ...(props.readableBuckets ?? []),
    ]);
    bindResultWriter(workload, props);
    // A big job's finishing recount starts as one step on the plan queue (decision 0027).
    if (props.planQueue) bindQueue(workload, { url: ENV.planQueueUrl }, props.planQueue, ['sqs:SendMessage']);
  }
}
