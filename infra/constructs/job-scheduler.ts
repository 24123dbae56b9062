import { Duration, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENV } from '../../shared/settings.ts';
import { HANDLERS, type LabelerImage } from '../image.ts';
import { bindQueue, bindTable, lambdaWorkload } from './env-binding.ts';
import { LabelerFunction } from './labeler-function.ts';

export interface JobSchedulerProps {
  readonly image: LabelerImage;
  /** Bucket whose prefixes jobs list. */
  readonly imagesBucket: s3.IBucket;
  /** Queue that receives the planned job items. */
  readonly bulkQueue: sqs.IQueue;
  readonly jobsTable: dynamodb.ITable;
  /**
   * Timeout of the plan-job function (listing a large prefix takes a while).
   * @default Duration.minutes(5)
   */
  readonly timeout?: Duration;
  /**
   * Log level.
   * @default 'INFO'
   */
  readonly logLevel?: string;
}

/**
 * The slot for scheduled labeling jobs: an EventBridge Scheduler schedule group,
 * the plan-job function (lists an S3 prefix, records the job, enqueues its items on
 * the bulk queue) and the role Scheduler assumes to invoke it. Schedules themselves
 * are created at run time (`labeler job schedule`) in this group with this role.
 */
export class JobScheduler extends Construct {
  readonly scheduleGroup: scheduler.ScheduleGroup;
  readonly function: LabelerFunction;
  /** Role to pass as the target role of each schedule. */
  readonly schedulerRole: iam.Role;

  constructor(scope: Construct, id: string, props: JobSchedulerProps) {
    super(scope, id);
    this.scheduleGroup = new scheduler.ScheduleGroup(this, 'Group');

    this.function = new LabelerFunction(this, 'PlanJob', {
      image: props.image,
      handler: HANDLERS.planJob,
      serviceName: 'labeler-plan-job',
      memorySize: 512,
      timeout: props.timeout ?? Duration.minutes(5),
      logLevel: props.logLevel,
    });
    const workload = lambdaWorkload(this.function);
    // Each job request names its bucket; this one is the only bucket it may list.
    this.function.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [props.imagesBucket.bucketArn] }),
    );
    bindQueue(workload, { url: ENV.bulkQueueUrl }, props.bulkQueue, ['sqs:SendMessage']);
    bindTable(workload, ENV.jobsTable, props.jobsTable, [
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    ]);

    const stack = Stack.of(this);
    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      description: 'Assumed by EventBridge Scheduler to invoke the plan-job function',
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
    this.schedulerRole.addToPolicy(
      new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.function.functionArn] }),
    );
  }
}
