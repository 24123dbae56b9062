import { Duration, Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { CLASSIFY, GPU_WORKER, JOBS, RESOURCE_NAMES } from '../../shared/settings.ts';
import { WorkQueue } from './work-queue.ts';

/**
 * The pipeline's work queues: `incoming` (S3 upload events) and `jobs` (`lambda` job
 * items), each an event source of the classify function, `bulk` (`gpu` job items, consumed by the GPU
 * workers) and `plan` (job plan steps, consumed by the plan-job function).
 * Timeouts and receive counts come from shared/settings.ts.
 */
export interface QueuesProps {
  /**
   * Prefix of the queue names (RESOURCE_NAMES in shared/settings.ts follow it).
   * @default - the stack name
   */
  readonly namePrefix?: string;
}

export class Queues extends Construct {
  readonly incoming: WorkQueue;
  /** `lambda`-target job images, the classify function's second event source. */
  readonly jobs: WorkQueue;
  readonly bulk: WorkQueue;
  /** Job plan steps, consumed one at a time by the plan-job function. */
  readonly plan: WorkQueue;

  constructor(scope: Construct, id: string, props: QueuesProps = {}) {
    super(scope, id);
    const prefix = props.namePrefix ?? Stack.of(this).stackName;
    this.incoming = new WorkQueue(this, 'Incoming', {
      queueName: `${prefix}-${RESOURCE_NAMES.incomingQueue}`,
      deadLetterQueueName: `${prefix}-${RESOURCE_NAMES.incomingDlq}`,
      visibilityTimeout: Duration.seconds(CLASSIFY.visibilityTimeoutSeconds),
      maxReceiveCount: CLASSIFY.maxReceiveCount,
    });
    this.jobs = new WorkQueue(this, 'Jobs', {
      queueName: `${prefix}-${RESOURCE_NAMES.jobsQueue}`,
      deadLetterQueueName: `${prefix}-${RESOURCE_NAMES.jobsDlq}`,
      visibilityTimeout: Duration.seconds(CLASSIFY.visibilityTimeoutSeconds),
      maxReceiveCount: CLASSIFY.maxReceiveCount,
    });
    this.bulk = new WorkQueue(this, 'Bulk', {
      queueName: `${prefix}-${RESOURCE_NAMES.bulkQueue}`,
      deadLetterQueueName: `${prefix}-${RESOURCE_NAMES.bulkDlq}`,
      visibilityTimeout: Duration.seconds(GPU_WORKER.visibilityTimeoutSeconds),
      maxReceiveCount: GPU_WORKER.maxReceiveCount,
    });
    this.plan = new WorkQueue(this, 'Plan', {
      queueName: `${prefix}-${RESOURCE_NAMES.planQueue}`,
      deadLetterQueueName: `${prefix}-${RESOURCE_NAMES.planDlq}`,
      visibilityTimeout: Duration.seconds(JOBS.planVisibilityTimeoutSeconds),
      maxReceiveCount: JOBS.planMaxReceiveCount,
    });
  }
}
