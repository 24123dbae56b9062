import { Duration, RemovalPolicy, Stack, TimeZone } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  SCHEDULE_DELIVERY,
  SCHEDULED_TIME_PLACEHOLDER,
  type ScheduleSpec,
  scheduleStartMessage,
} from '../../shared/labeling/schedules.ts';
import { ENV, JOBS } from '../../shared/settings.ts';
import { HANDLERS, type LabelerImage } from '../image.ts';
import { JOB_ACCOUNTING_ACTIONS } from './classify.ts';
import { bindQueue, bindTable, lambdaWorkload } from './env-binding.ts';
import { LabelerFunction } from './labeler-function.ts';
import type { WorkQueue } from './work-queue.ts';

export interface JobSchedulerProps {
  readonly image: LabelerImage;
  /** Buckets whose prefixes jobs list: the images bucket and cdk.json's `readableBuckets`. */
  readonly readableBuckets: readonly s3.IBucket[];
  /** Plan steps: `start` requests (CLI, schedules) and the function's own `continue` steps. */
  readonly planQueue: WorkQueue;
  /**
   * The stack's hosted models and their queues, as ENV.stackModels' JSON (tokens resolved at
   * deploy): a job's images go to its model's jobs queue (`lambda`) or bulk queue (`gpu`).
   */
  readonly stackModels: string;
  /** Every hosted model's jobs and bulk queues: the function sends job images to them. */
  readonly modelQueues: readonly sqs.IQueue[];
  readonly jobsTable: dynamodb.ITable;
  /**
   * Schedules declared in the app's configuration (cdk.json context `schedules`).
   * @default - none; `labeler jobs schedule add` creates them at run time
   */
  readonly schedules?: readonly ScheduleSpec[];
  /**
   * Log level.
   * @default 'INFO'
   */
  readonly logLevel?: string;
}

/**
 * Labeling jobs: the plan-job function consuming the plan queue, the EventBridge
 * Scheduler schedule group with the role schedules assume to send to the plan queue,
 * and the schedules declared in configuration. Schedules created at run time
 * (`labeler jobs schedule add`) use the same group, role and dead-letter queue.
 */
export class JobScheduler extends Construct {
  /** The group every schedule of this stack lives in (CloudFormation names it; deleted with the stack). */
  readonly scheduleGroup: scheduler.IScheduleGroup;
  readonly function: LabelerFunction;
  readonly eventSource: SqsEventSource;
  /** Role to pass as the target role of each schedule. */
  readonly schedulerRole: iam.Role;
  readonly schedules: readonly scheduler.Schedule[];

  constructor(scope: Construct, id: string, props: JobSchedulerProps) {
    super(scope, id);
    // The L2 ScheduleGroup fixes a name and RETAINs the group, so a `cdk destroy` left it
    // behind and the next deploy of the same stack failed on "already exists". CloudFormation
    // names this one and deletes it with the stack; deleting a group deletes every schedule
    // in it, those `labeler jobs schedule add` created at run time included (decision 0024).
    const group = new scheduler.CfnScheduleGroup(this, 'Group');
    group.applyRemovalPolicy(RemovalPolicy.DESTROY);
    this.scheduleGroup = scheduler.ScheduleGroup.fromScheduleGroupName(this, 'GroupRef', group.ref);
    const planQueue = props.planQueue.queue;

    this.function = new LabelerFunction(this, 'PlanJob', {
      image: props.image,
      handler: HANDLERS.planJob,
      serviceName: 'labeler-plan-job',
      memorySize: 512,
      timeout: Duration.seconds(JOBS.planTimeoutSeconds),
      logLevel: props.logLevel,
      // Jobs record the model they label with: its id and version are in the stack's models.
      environment: { [ENV.stackModels]: props.stackModels },
    });
    // One plan step per invocation: a failed step is retried alone, never a neighbour.
    this.eventSource = new SqsEventSource(planQueue, { batchSize: 1, reportBatchItemFailures: true });
    this.function.addEventSource(this.eventSource);

    const workload = lambdaWorkload(this.function);
    // Each job request names its bucket: one the stack may label, which the CLI checks first.
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: props.readableBuckets.map((bucket) => bucket.bucketArn),
      }),
    );
    // Its own continuation steps go back on the plan queue.
    bindQueue(workload, { url: ENV.planQueueUrl }, planQueue, ['sqs:SendMessage']);
    // The models' queues are named in ENV.stackModels: each job's images go to its model's.
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['sqs:SendMessage'],
        resources: props.modelQueues.map((queue) => queue.queueArn),
      }),
    );
    // Job item reads and transitions, and the sharded counters (BatchGetItem) for completion.
    bindTable(workload, ENV.jobsTable, props.jobsTable, JOB_ACCOUNTING_ACTIONS);

    const stack = Stack.of(this);
    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      description: 'Assumed by EventBridge Scheduler to send job start requests to the plan queue',
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: {
            'aws:SourceArn': stack.formatArn({
              service: 'scheduler',
              resource: 'schedule',
              resourceName: `${this.scheduleGroup.scheduleGroupName}/*`,
            }),
          },
        },
      }),
    });
    // Schedules created at run time name this role: it must already allow their target and DLQ.
    this.schedulerRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['sqs:SendMessage'],
        resources: [planQueue.queueArn, props.planQueue.deadLetterQueue.queueArn],
      }),
    );

    this.schedules = (props.schedules ?? []).map(
      (spec) =>
        new scheduler.Schedule(this, `Schedule-${spec.name}`, {
          scheduleName: spec.name,
          description: `Labeling job over s3://${spec.bucket}/${spec.prefix} (${spec.target}, ${spec.mode})`,
          scheduleGroup: this.scheduleGroup,
          schedule: scheduler.ScheduleExpression.expression(
            spec.expression,
            spec.timezone ? TimeZone.of(spec.timezone) : undefined,
          ),
          timeWindow: scheduler.TimeWindow.flexible(
            Duration.minutes(SCHEDULE_DELIVERY.flexibleWindowMinutes),
          ),
          target: new targets.SqsSendMessage(planQueue, {
            role: this.schedulerRole,
            deadLetterQueue: props.planQueue.deadLetterQueue,
            retryAttempts: SCHEDULE_DELIVERY.retryAttempts,
            maxEventAge: Duration.seconds(SCHEDULE_DELIVERY.maxEventAgeSeconds),
            input: scheduler.ScheduleTargetInput.fromText(
              JSON.stringify(scheduleStartMessage(spec, SCHEDULED_TIME_PLACEHOLDER)),
            ),
          }),
        }),
    );
  }
}
