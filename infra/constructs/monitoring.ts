import { Annotations, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { CODE } from '../../shared/error-codes.ts';
import { ALARMS, DRIFT } from '../../shared/settings.ts';
import type { WorkQueue } from './work-queue.ts';

export interface MonitoredQueue {
  /** Display name, e.g. 'Incoming'. */
  readonly name: string;
  readonly workQueue: WorkQueue;
  /**
   * Age of the oldest message that raises the queue's falling-behind alarm.
   * @default - no such alarm: messages may wait by design (a long job); use noProgressAfter
   */
  readonly maxMessageAge?: Duration;
  /**
   * Raise `<name>NoProgress` when the queue holds messages (visible or in flight) and none
   * is deleted for this long: its consumer is not draining it. A multiple of 5 minutes.
   * @default - no such alarm
   */
  readonly noProgressAfter?: Duration;
}

export interface MonitoredFunction {
  readonly name: string;
  readonly function: lambda.IFunction;
  /** Whether failed invocations raise an alarm (the query API's errors are the caller's 5xx). */
  readonly alarmOnErrors: boolean;
}

export interface MonitoredTable {
  readonly name: string;
  readonly table: dynamodb.ITable;
  /** Global secondary indexes: each throttles on its own, and a throttled index throttles the table's writes. */
  readonly indexNames: readonly string[];
}

/** The GPU fleet: its ECS service (Container Insights counts) and Auto Scaling group (group metrics). */
export interface MonitoredGpuFleet {
  readonly service: ecs.IBaseService;
  readonly autoScalingGroup: autoscaling.IAutoScalingGroup;
  /**
   * Services of further hosted models on the same instances: each gets its own
   * `<name>-GpuTasksBelowDesired` alarm.
   * @default - none
   */
  readonly otherServices?: readonly { readonly name: string; readonly service: ecs.IBaseService }[];
}

export interface MonitoringProps {
  /** Queues: the dead-letter queue must stay empty and the oldest message young. */
  readonly queues: readonly MonitoredQueue[];
  /** Functions whose throttles (and errors, if asked) raise alarms. */
  readonly functions: readonly MonitoredFunction[];
  /** Tables whose throttled requests raise alarms, base table and every index. */
  readonly tables: readonly MonitoredTable[];
  /**
   * The GPU workers' log group: a task that cannot load CUDA (its start-up error) or runs
   * on the CPU (allowed fallback) raises an alarm.
   * @default - no GPU workers
   */
  readonly gpuWorkerLogs?: logs.ILogGroup;
  /**
   * The GPU fleet: alarms when the service runs fewer tasks than desired, or the group has
   * fewer instances in service than desired (no capacity, no quota), for 15 minutes.
   * @default - no GPU workers
   */
  readonly gpuFleet?: MonitoredGpuFleet;
  /**
   * Powertools service names of the processes that label images: the share of their
   * images that failed (`Labeler/ImagesFailed`) raises an alarm above ALARMS.failedImagesShare.
   * @default - no failed-share alarm
   */
  readonly labelingServices?: readonly string[];
  /**
   * Names of the schedules declared in cdk.json: each gets an alarm on its `Labeler/LabelDrift`
   * (dimension Schedule) above DRIFT.threshold, the divergence a finished run sends (decision 0039).
   * @default - none
   */
  readonly driftSchedules?: readonly string[];
  /**
   * E-mail address subscribed to the alarm topic.
   * @default - none: synthesis warns, and someone must subscribe to the topic
   */
  readonly alarmEmail?: string;
  /**
   * Extra widgets (e.g. the GPU backlog).
   * @default - none
   */
  readonly extraWidgets?: readonly cloudwatch.IWidget[];
}

/** Namespace of the metrics the pipeline publishes itself (shared/observability.ts) or derives from logs. */
export const METRIC_NAMESPACE = 'Labeler';
/** Metric counting GPU worker start-ups without CUDA (from the worker's log lines). */
export const GPU_WITHOUT_CUDA_METRIC = 'GpuWorkerWithoutCuda';

/**
 * Alarms that reach a person: every alarm notifies one SNS topic (encrypted with a key
 * CloudWatch may use, SSL only), which an e-mail address subscribes to. Alarms: any
 * message in a dead-letter queue, each queue falling behind, classify and plan-job
 * errors, throttled Lambda invocations, throttled DynamoDB requests on every table and
 * index, a GPU worker without CUDA. Plus a dashboard.
 */
export class Monitoring extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const fiveMinutes = Duration.minutes(5);

    // CloudWatch publishes to an encrypted topic only through a customer-managed key
    // whose policy lets it; the AWS-managed SNS key does not.
    // It encrypts only messages in flight on the topic, which goes with the stack: nothing
    // is left to decrypt, so `cdk destroy` schedules it for deletion (decision 0024).
    const key = new kms.Key(this, 'AlarmTopicKey', {
      description: 'Encrypts the Labeler alarm topic',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    this.topic = new sns.Topic(this, 'AlarmTopic', {
      displayName: 'Labeler alarms',
      masterKey: key,
      enforceSSL: true,
    });
    if (props.alarmEmail) {
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(props.alarmEmail)) {
        throw new Error(`alarmEmail is not an e-mail address: "${props.alarmEmail}"`);
      }
      this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    } else {
      Annotations.of(this).addWarningV2(
        'labeler:no-alarm-email',
        'No alarm e-mail: alarms publish to the AlarmTopic output, which nobody is subscribed to. Deploy with -c alarmEmail=you@example.com.',
      );
    }

    for (const { name, workQueue, maxMessageAge, noProgressAfter } of props.queues) {
      if (noProgressAfter) this.addNoProgressAlarm(name, workQueue, noProgressAfter);
      this.#alarm(
        `${name}DlqNotEmpty`,
        workQueue.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: fiveMinutes,
          statistic: 'Maximum',
        }),
        {
          alarmDescription: `Messages in the ${name} dead-letter queue: inspect with \`labeler dlq list\``,
          threshold: 0,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 1,
        },
      );
      if (!maxMessageAge) continue;
      this.#alarm(
        `${name}FallingBehind`,
        workQueue.queue.metricApproximateAgeOfOldestMessage({ period: fiveMinutes, statistic: 'Maximum' }),
        {
          alarmDescription: `The oldest message on the ${name} queue waits longer than ${maxMessageAge.toHumanString()}`,
          threshold: maxMessageAge.toSeconds(),
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 2,
        },
      );
    }

    for (const { name, function: fn, alarmOnErrors } of props.functions) {
      if (alarmOnErrors) {
        this.#alarm(`${name}Errors`, fn.metricErrors({ period: fiveMinutes, statistic: 'Sum' }), {
          alarmDescription: `The ${name} function failed whole invocations (not per-image failures)`,
          threshold: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
        });
      }
      this.#alarm(`${name}Throttles`, fn.metricThrottles({ period: fiveMinutes, statistic: 'Sum' }), {
        alarmDescription: `Invocations of the ${name} function were throttled (account or reserved concurrency exhausted)`,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      });
    }

    for (const { name, table, indexNames } of props.tables) {
      for (const indexName of [undefined, ...indexNames]) {
        const dimensionsMap: Record<string, string> = {
          TableName: table.tableName,
          ...(indexName ? { GlobalSecondaryIndexName: indexName } : {}),
        };
        const events = (metricName: string) =>
          new cloudwatch.Metric({
            namespace: 'AWS/DynamoDB',
            metricName,
            dimensionsMap,
            period: fiveMinutes,
            statistic: 'Sum',
          });
        const where = indexName ? `index ${indexName} of the ${name} table` : `the ${name} table`;
        this.#alarm(
          `${name}${indexName ? `${pascal(indexName)}Index` : ''}Throttled`,
          new cloudwatch.MathExpression({
            label: `Throttled requests on ${where}`,
            expression: 'reads + writes',
            usingMetrics: { reads: events('ReadThrottleEvents'), writes: events('WriteThrottleEvents') },
            period: fiveMinutes,
          }),
          {
            alarmDescription:
              `Requests on ${where} are throttled in two consecutive 5-minute periods: a hot key ` +
              '(docs/decisions/0011-by-label-hot-key.md) or a burst past on-demand capacity; SDK retries and ' +
              'queue redelivery absorb short bursts',
            threshold: 1,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluationPeriods: 2,
          },
        );
      }
    }

    if (props.gpuWorkerLogs) {
      // Derived from the worker's JSON log lines rather than its own metrics: a task that
      // fails at start-up exits before any metric would be flushed.
      const filter = new logs.MetricFilter(this, 'GpuWithoutCudaFilter', {
        logGroup: props.gpuWorkerLogs,
        metricNamespace: METRIC_NAMESPACE,
        metricName: GPU_WITHOUT_CUDA_METRIC,
        filterPattern: logs.FilterPattern.any(
          logs.FilterPattern.stringValue('$.code', '=', CODE.model.providerUnavailable),
          logs.FilterPattern.stringValue('$.executionProvider', '=', 'cpu'),
        ),
        metricValue: '1',
        defaultValue: 0,
      });
      this.#alarm('GpuWorkerWithoutCuda', filter.metric({ period: fiveMinutes, statistic: 'Sum' }), {
        alarmDescription:
          'A GPU worker could not load CUDA (the task exits and ECS replaces it) or runs on the CPU: check the instance AMI, driver and the task log',
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      });
    }

    if (props.gpuFleet) this.#gpuFleetAlarms(props.gpuFleet);
    if (props.labelingServices && props.labelingServices.length > 0) {
      this.#failedShareAlarm(props.labelingServices);
    }
    for (const schedule of props.driftSchedules ?? []) this.#driftAlarm(schedule);

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
      new cloudwatch.GraphWidget({
        title: 'Oldest message (s)',
        left: props.queues.map(({ workQueue }) =>
          workQueue.queue.metricApproximateAgeOfOldestMessage({ period: fiveMinutes, statistic: 'Maximum' }),
        ),
        width: 8,
      }),
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
        title: 'Functions: invocations',
        left: props.functions.map(({ function: fn }) => fn.metricInvocations({ period: fiveMinutes })),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Functions: errors and throttles',
        left: props.functions.flatMap(({ function: fn }) => [
          fn.metricErrors({ period: fiveMinutes }),
          fn.metricThrottles({ period: fiveMinutes }),
        ]),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Functions: duration p99',
        left: props.functions.map(({ function: fn }) =>
          fn.metricDuration({ period: fiveMinutes, statistic: 'p99' }),
        ),
        width: 8,
      }),
      ...(props.extraWidgets ?? []),
    );
  }

  /**
   * `<name>NoProgress`: the queue holds messages (visible or in flight) and none was deleted
   * for `after`, checked in 5-minute periods. Public so that a queue added later (e.g. by
   * another construct) can get the same alarm.
   */
  addNoProgressAlarm(name: string, workQueue: WorkQueue, after: Duration): void {
    const period = Duration.minutes(5);
    const periods = after.toSeconds() / period.toSeconds();
    if (!Number.isInteger(periods) || periods < 1) {
      throw new Error(`noProgressAfter of ${name} must be a positive multiple of 5 minutes`);
    }
    const queue = workQueue.queue;
    this.#alarm(
      `${name}NoProgress`,
      new cloudwatch.MathExpression({
        label: `${name} queue: work waiting, nothing deleted`,
        expression: 'IF((visible + inFlight) > 0 AND FILL(deleted, 0) == 0, 1, 0)',
        usingMetrics: {
          visible: queue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Minimum' }),
          inFlight: queue.metricApproximateNumberOfMessagesNotVisible({ period, statistic: 'Minimum' }),
          deleted: queue.metricNumberOfMessagesDeleted({ period, statistic: 'Sum' }),
        },
        period,
      }),
      {
        alarmDescription: `The ${name} queue has held work for ${after.toHumanString()} and no message was deleted: nothing is draining it`,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: periods,
        datapointsToAlarm: periods,
      },
    );
  }

  #gpuFleetAlarms({ service, autoScalingGroup, otherServices }: MonitoredGpuFleet): void {
    this.#gpuTasksAlarm('GpuTasksBelowDesired', service, 'The GPU service');
    for (const other of otherServices ?? []) {
      this.#gpuTasksAlarm(
        `${other.name}-GpuTasksBelowDesired`,
        other.service,
        `The GPU service of model ${other.name}`,
      );
    }
    const period = Duration.minutes(5);
    const asgMetric = (metricName: string, statistic: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/AutoScaling',
        metricName,
        dimensionsMap: { AutoScalingGroupName: autoScalingGroup.autoScalingGroupName },
        period,
        statistic,
      });
    const instancePeriods = ALARMS.gpuInstancesShortMinutes / 5;
    this.#alarm(
      'GpuInstancesBelowDesired',
      new cloudwatch.MathExpression({
        label: 'GPU instances desired but not in service',
        expression: 'desired - FILL(inService, 0)',
        usingMetrics: {
          desired: asgMetric('GroupDesiredCapacity', 'Minimum'),
          inService: asgMetric('GroupInServiceInstances', 'Maximum'),
        },
        period,
      }),
      {
        alarmDescription: `The GPU Auto Scaling group has had fewer instances in service than desired for ${ALARMS.gpuInstancesShortMinutes} minutes: launches fail (no capacity for any of its instance types, a G-instance vCPU quota too low)`,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: instancePeriods,
        datapointsToAlarm: instancePeriods,
      },
    );
  }

  #gpuTasksAlarm(id: string, service: ecs.IBaseService, what: string): void {
    const period = Duration.minutes(5);
    const ecsMetric = (metricName: string, statistic: string) =>
      new cloudwatch.Metric({
        namespace: 'ECS/ContainerInsights',
        metricName,
        dimensionsMap: { ClusterName: service.cluster.clusterName, ServiceName: service.serviceName },
        period,
        statistic,
      });
    const tasksPeriods = ALARMS.gpuTasksShortMinutes / 5;
    this.#alarm(
      id,
      new cloudwatch.MathExpression({
        label: 'GPU tasks desired but not running',
        // The lowest desired count above the highest running count, for the whole period.
        expression: 'desired - FILL(running, 0)',
        usingMetrics: {
          desired: ecsMetric('DesiredTaskCount', 'Minimum'),
          running: ecsMetric('RunningTaskCount', 'Maximum'),
        },
        period,
      }),
      {
        alarmDescription: `${what} has run fewer tasks than desired for ${ALARMS.gpuTasksShortMinutes} minutes: no instance to place them on, or tasks that stop at start-up`,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: tasksPeriods,
        datapointsToAlarm: tasksPeriods,
      },
    );
  }

  #failedShareAlarm(services: readonly string[]): void {
    const period = Duration.minutes(ALARMS.failedImagesWindowMinutes);
    const metric = (metricName: string, service: string) =>
      new cloudwatch.Metric({
        namespace: METRIC_NAMESPACE,
        metricName,
        // Powertools Metrics' default dimension (shared/observability.ts).
        dimensionsMap: { service },
        period,
        statistic: 'Sum',
      });
    const usingMetrics: Record<string, cloudwatch.IMetric> = {};
    services.forEach((service, i) => {
      usingMetrics[`failed${i}`] = metric('ImagesFailed', service);
      usingMetrics[`labeled${i}`] = metric('ImagesLabeled', service);
    });
    const sum = (prefix: string) => services.map((_, i) => `FILL(${prefix}${i}, 0)`).join(' + ');
    const failed = `(${sum('failed')})`;
    const all = `(${sum('failed')} + ${sum('labeled')})`;
    const percent = Math.round(ALARMS.failedImagesShare * 100);
    this.#alarm(
      'ImagesFailedShare',
      new cloudwatch.MathExpression({
        label: 'Share of images failed',
        expression: `IF(${all} >= ${ALARMS.failedImagesMinCount}, ${failed} / ${all}, 0)`,
        usingMetrics,
        period,
      }),
      {
        alarmDescription: `More than ${percent} % of the images labeled in ${ALARMS.failedImagesWindowMinutes} minutes failed (at least ${ALARMS.failedImagesMinCount} images): a bad batch of uploads, a model or preprocessing fault, or access denied; \`labeler query\` and the function log name the error codes`,
        threshold: ALARMS.failedImagesShare,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      },
    );
  }

  /**
   * `LabelDrift<Schedule>`: a finished run of the schedule sent a divergence from its first
   * run above DRIFT.threshold. One data point per run, so the largest in an hour; no run, no data.
   */
  #driftAlarm(schedule: string): void {
    this.#alarm(
      `LabelDrift${pascal(schedule)}`,
      new cloudwatch.Metric({
        namespace: METRIC_NAMESPACE,
        metricName: DRIFT.metricName,
        dimensionsMap: { Schedule: schedule },
        period: Duration.hours(1),
        statistic: 'Maximum',
      }),
      {
        alarmDescription: `A run of schedule "${schedule}" labeled a top-1 label mix that diverges from its first run by more than ${DRIFT.threshold} (Jensen–Shannon): what arrives changed, or the model did; \`labeler jobs schedule drift ${schedule}\` shows the labels that moved`,
        threshold: DRIFT.threshold,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      },
    );
  }

  #alarm(
    id: string,
    metric: cloudwatch.Metric | cloudwatch.MathExpression,
    options: cloudwatch.CreateAlarmOptions,
  ): void {
    const alarm = metric.createAlarm(this, id, {
      // Named as docs/DEPLOY.md's runbook names it (stack name, then the id).
      alarmName: `${Stack.of(this).stackName}-${id}`,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      ...options,
    });
    const action = new cloudwatchActions.SnsAction(this.topic);
    alarm.addAlarmAction(action);
    alarm.addOkAction(action);
    this.alarms.push(alarm);
  }
}

function pascal(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]?.toUpperCase() + part.slice(1))
    .join('');
}
