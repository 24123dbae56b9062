import { Duration } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CLASSIFY, ENV, lambdaVcpus, RESULTS_PREFIX, UPLOAD_FILTER } from '../../shared/settings.ts';
import { HANDLERS, type LabelerImage } from '../image.ts';
import { bindBucketObjects, bindTable, lambdaWorkload, type Workload } from './env-binding.ts';
import { acknowledgeObjectPattern } from './grants.ts';
import { LabelerFunction } from './labeler-function.ts';

/** What a worker that labels images does on the results table (shared/aws/dynamo-results-store.ts). */
export const RESULT_WRITER_ACTIONS = [
  'dynamodb:BatchGetItem',
  'dynamodb:PutItem',
  'dynamodb:DeleteItem',
] as const;

/**
 * What job accounting does on the jobs table (shared/aws/dynamo-jobs-store.ts): read a
 * job and its counter shards, write an image's outcome marker and counter (one
 * transaction, authorised per contained action) and move the job's status.
 */
export const JOB_ACCOUNTING_ACTIONS = [
  'dynamodb:BatchGetItem',
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
] as const;

/**
 * What every labeling worker (the classify function, the GPU task) writes: the JSON Lines
 * export, the result transactions and, for job images, the job accounting in the same
 * transaction. Each grant travels with the variable that names its resource.
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
  /** Queue of S3 upload events. */
  readonly queue: sqs.IQueue;
  readonly imagesBucket: s3.IBucket;
  readonly resultsBucket: s3.IBucket;
  readonly resultsTable: dynamodb.ITable;
  /** Where the images of labeling jobs are counted. */
  readonly jobsTable: dynamodb.ITable;
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
}

/**
 * The classify function: labels the images named by S3 upload events, fed by an
 * SQS event source that reports partial batch failures. Sizes come from CLASSIFY.
 */
export class Classify extends Construct {
  readonly function: LabelerFunction;
  readonly eventSource: SqsEventSource;

  constructor(scope: Construct, id: string, props: ClassifyProps) {
    super(scope, id);
    this.function = new LabelerFunction(this, 'Function', {
      image: props.image,
      handler: HANDLERS.classify,
      serviceName: 'labeler-classify',
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

    this.eventSource = new SqsEventSource(props.queue, {
      batchSize: CLASSIFY.batchSize,
      maxBatchingWindow: Duration.seconds(CLASSIFY.maxBatchingWindowSeconds),
      maxConcurrency: CLASSIFY.maxConcurrency,
      reportBatchItemFailures: true,
    });
    this.function.addEventSource(this.eventSource);

    // The images bucket is named by each S3 event, not by a variable.
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [props.imagesBucket.arnForObjects(`${UPLOAD_FILTER.prefix}*`)],
      }),
    );
    bindResultWriter(workload, props);
    acknowledgeObjectPattern(
      this.function.role ?? this.function,
      props.imagesBucket,
      `${UPLOAD_FILTER.prefix}*`,
      'Reads the uploaded images named by S3 events: any key under the upload prefix, GetObject only.',
    );
  }
}
