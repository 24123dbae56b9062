import { Duration, Stack, Token } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { ConfigError } from '../../shared/errors.ts';
import { CLASSIFY, GPU_WORKER, JOBS, modelQueueNames, RESOURCE_NAMES } from '../../shared/settings.ts';
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

/** The queues of one hosted model: its classify function's and its GPU workers'. */
export interface ModelQueues {
  /** `lambda`-target job images: the model's classify function's event source. */
  readonly jobs: WorkQueue;
  /** `gpu`-target job images, drained by the model's GPU workers; absent without them. */
  readonly bulk?: WorkQueue;
}

export class Queues extends Construct {
  readonly incoming: WorkQueue;
  /** `lambda`-target job images, the classify function's second event source. */
  readonly jobs: WorkQueue;
  readonly bulk: WorkQueue;
  /** Job plan steps, consumed one at a time by the plan-job function. */
  readonly plan: WorkQueue;
  readonly #prefix: string;

  constructor(scope: Construct, id: string, props: QueuesProps = {}) {
    super(scope, id);
    const prefix = props.namePrefix ?? Stack.of(this).stackName;
    this.#prefix = prefix;
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

  /**
   * The queues of a further hosted model (decision 0038): `Jobs-<name>` and `Bulk-<name>`,
   * named by modelQueueNames, each with a dead-letter queue, sized like the first model's.
   */
  addModel(name: string, options: { readonly bulk: boolean }): ModelQueues {
    const names = modelQueueNames(name, false);
    const named = (queue: string) => checkedQueueName(`${this.#prefix}-${queue}`);
    const jobs = new WorkQueue(this, `Jobs-${name}`, {
      queueName: named(names.jobsQueue),
      deadLetterQueueName: named(names.jobsDlq),
      visibilityTimeout: Duration.seconds(CLASSIFY.visibilityTimeoutSeconds),
      maxReceiveCount: CLASSIFY.maxReceiveCount,
    });
    if (!options.bulk) return { jobs };
    const bulk = new WorkQueue(this, `Bulk-${name}`, {
      queueName: named(names.bulkQueue),
      deadLetterQueueName: named(names.bulkDlq),
      visibilityTimeout: Duration.seconds(GPU_WORKER.visibilityTimeoutSeconds),
      maxReceiveCount: GPU_WORKER.maxReceiveCount,
    });
    return { jobs, bulk };
  }
}

/** SQS refuses names over 80 characters at deploy time; say so at synthesis. */
function checkedQueueName(name: string): string {
  if (!Token.isUnresolved(name) && name.length > 80) {
    throw new ConfigError(
      `queue name "${name}" is longer than SQS's 80 characters: shorten the model's name or the stack's`,
    );
  }
  return name;
}
