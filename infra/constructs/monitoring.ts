import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { WorkQueue } from './work-queue.ts';

export interface MonitoredQueue {
  /** Display name, e.g. 'incoming'. */
  readonly name: string;
  readonly workQueue: WorkQueue;
}

export interface MonitoringProps {
  /** Queues whose dead-letter queues must stay empty (and whose depth is graphed). */
  readonly queues: readonly MonitoredQueue[];
  /** The queue whose oldest message age is alarmed (the one the classify function drains). */
  readonly ageAlarmQueue: WorkQueue;
  /** The classify function (errors alarmed). */
  readonly classifyFunction: lambda.IFunction;
  /**
   * Age of the oldest message on the ageAlarmQueue that raises the alarm.
   * @default Duration.minutes(15)
   */
  readonly maxMessageAge?: Duration;
  /**
   * Function errors per 5 minutes that raise the alarm.
   * @default 1
   */
  readonly errorThreshold?: number;
  /**
   * Extra widgets (e.g. the GPU backlog).
   * @default - none
   */
  readonly extraWidgets?: readonly cloudwatch.IWidget[];
}

/**
 * A dashboard and alarms: any message in a dead-letter queue, the incoming queue
 * falling behind (age of its oldest message), classify function errors. Alarms
 * carry no action; subscribe a topic with `alarm.addAlarmAction` if wanted.
 */
export class Monitoring extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const fiveMinutes = Duration.minutes(5);

    for (const { name, workQueue } of props.queues) {
      this.alarms.push(
        workQueue.deadLetterQueue
          .metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: 'Maximum' })
          .createAlarm(this, `${name}DlqNotEmpty`, {
            alarmDescription: `Messages in the ${name} dead-letter queue: inspect with \`labeler dlq list\``,
            threshold: 0,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluationPeriods: 1,
            treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          }),
      );
    }

    const age = props.ageAlarmQueue.queue.metricApproximateAgeOfOldestMessage({
      period: fiveMinutes,
      statistic: 'Maximum',
    });
    this.alarms.push(
      age.createAlarm(this, 'IncomingFallingBehind', {
        alarmDescription: 'The oldest upload event waits longer than the labeling target',
        threshold: (props.maxMessageAge ?? Duration.minutes(15)).toSeconds(),
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 2,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );

    const errors = props.classifyFunction.metricErrors({ period: fiveMinutes, statistic: 'Sum' });
    this.alarms.push(
      errors.createAlarm(this, 'ClassifyErrors', {
        alarmDescription: 'The classify function failed whole invocations (not per-image failures)',
        threshold: props.errorThreshold ?? 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Queue depth',
        left: props.queues.map(({ workQueue }) =>
          workQueue.queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1) }),
        ),
        width: 8,
      }),
      new cloudwatch.GraphWidget({ title: 'Incoming: oldest message (s)', left: [age], width: 8 }),
      new cloudwatch.GraphWidget({
        title: 'Dead-letter queues',
        left: props.queues.map(({ workQueue }) =>
          workQueue.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1) }),
        ),
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Classify: invocations and errors',
        left: [props.classifyFunction.metricInvocations({ period: fiveMinutes }), errors],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Classify: duration (p50, p99)',
        left: [
          props.classifyFunction.metricDuration({ period: fiveMinutes, statistic: 'p50' }),
          props.classifyFunction.metricDuration({ period: fiveMinutes, statistic: 'p99' }),
        ],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Classify: concurrency',
        left: [
          props.classifyFunction.metric('ConcurrentExecutions', {
            period: fiveMinutes,
            statistic: 'Maximum',
          }),
        ],
        width: 8,
      }),
      ...(props.extraWidgets ?? []),
    );
  }
}
