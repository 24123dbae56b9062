import { Annotations, CfnOutput, Duration, Fn, Stack, type StackProps, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { ScheduleError, validateSchedule } from '../shared/labeling/schedules.ts';
import { resolveHostedModel } from '../shared/labeling/stack-models.ts';
import { ALARMS, JOB_IMAGES, JOBS_TABLE, RESULTS_TABLE, TABLE_WARM_THROUGHPUT } from '../shared/settings.ts';
import { Athena } from './constructs/athena.ts';
import { Classify } from './constructs/classify.ts';
import { GpuWorkers } from './constructs/gpu-workers.ts';
import { JobScheduler } from './constructs/job-scheduler.ts';
import { Monitoring } from './constructs/monitoring.ts';
import { QueryApi } from './constructs/query-api.ts';
import { type ModelQueues, Queues } from './constructs/queues.ts';
import { Storage } from './constructs/storage.ts';
import {
  checkStackModelsFit,
  type ModelChoice,
  modelsContext,
  perModel,
  type ResolvedModel,
  resolveModels,
} from './hosted-models.ts';
import { CUDA_PROVIDER_SHA256, cudaProviderPinned, LabelerImage } from './image.ts';

/** One hosted model's labeling workers: its image, queues and classify function. */
export interface HostedModelWorkers {
  readonly model: ResolvedModel;
  readonly image: LabelerImage;
  readonly queues: ModelQueues;
  readonly classify: Classify;
  /** Whether uploads are labeled with it (its function has the incoming queue's event source). */
  readonly isDefault: boolean;
}

/** Alarm and widget names: the first model's are a one-model stack's, the others' lead with the model. */
function monitoredName(model: ResolvedModel, base: string): string {
  return model.legacy ? base : `${model.name}-${base}`;
}

export interface LabelerStackProps extends StackProps {
  /**
   * Model folder baked into the images, relative to the repository root: the one-model
   * shorthand of `models` (give one or the other).
   * @default 'models/fashion-efficientnet'
   */
  readonly modelDir?: string;
  /**
   * The models the stack hosts (cdk.json context `models`), each with its own labeling
   * workers and queues (decision 0038). The first keeps a one-model stack's resources.
   * @default - the one model of `modelDir`
   */
  readonly models?: readonly ModelChoice[];
  /**
   * The name of the model uploads are labeled with (cdk.json context `defaultModel`).
   * @default - the first of `models`
   */
  readonly defaultModel?: string;
  /**
   * Whether to create the GPU workers (VPC, ECS cluster, GPU Auto Scaling group).
   * @default true
   */
  readonly gpuWorkers?: boolean;
  /**
   * Create the ECS service-linked role with the GPU workers (a fresh account lacks it).
   * @default false
   */
  readonly createEcsServiceLinkedRole?: boolean;
  /**
   * EC2 instance type of the GPU workers (a key of GPU_INSTANCE_SIZES): the same as
   * `gpuInstanceTypes: [gpuInstanceType]`; ignored when gpuInstanceTypes is given.
   * @default - gpuInstanceTypes
   */
  readonly gpuInstanceType?: string;
  /**
   * EC2 instance types the GPU workers may launch, most preferred first.
   * @default GPU_WORKER.instanceTypes
   */
  readonly gpuInstanceTypes?: readonly string[];
  /**
   * Run the GPU workers on Spot instances.
   * @default GPU_WORKER.spot (false)
   */
  readonly gpuSpot?: boolean;
  /**
   * E-mail address subscribed to the alarm topic.
   * @default - no subscription (synthesis warns; subscribe to the AlarmTopic output)
   */
  readonly alarmEmail?: string;
  /**
   * Labeling job schedules (cdk.json context `schedules`); `bucket` defaults to the images bucket.
   * @default - none
   */
  readonly schedules?: readonly Record<string, unknown>[];
  /**
   * Buckets besides the images bucket whose objects jobs may label (cdk.json context
   * `readableBuckets`): the labeling roles get GetObject on them and plan-job ListBucket.
   * @default - none
   */
  readonly readableBuckets?: readonly string[];
  /**
   * Concurrent classify invocations on job images (cdk.json `jobsMaxConcurrency`, 2-1000).
   * @default JOB_IMAGES.maxConcurrency
   */
  readonly jobsMaxConcurrency?: number;
  /**
   * Warm write units per second of the results and jobs tables (cdk.json
   * `resultsTableWarmWrites`, `jobsTableWarmWrites`; at least 4,000, a new table's own).
   * @default TABLE_WARM_THROUGHPUT
   */
  readonly warmWriteUnits?: { readonly results?: number; readonly jobs?: number };
}

/** The whole pipeline: S3 -> SQS -> Lambda/ECS GPU -> DynamoDB + S3, plus jobs, queries, monitoring. */
export class LabelerStack extends Stack {
  readonly storage: Storage;
  readonly queues: Queues;
  /** The first model's classify function (a one-model stack's). */
  readonly classify: Classify;
  /** Every hosted model's labeling workers and queues, the first model's first. */
  readonly hostedModels: readonly HostedModelWorkers[];
  /** The name of the model uploads are labeled with. */
  readonly defaultModel: string;
  readonly jobScheduler: JobScheduler;
  readonly queryApi: QueryApi;
  readonly gpuWorkers: GpuWorkers | undefined;
  readonly monitoring: Monitoring;
  readonly athena: Athena;

  constructor(scope: Construct, id: string, props: LabelerStackProps = {}) {
    super(scope, id, props);
    const choice = modelsContext({
      models: props.models,
      defaultModel: props.defaultModel,
      modelDir: props.modelDir,
    });
    const models = resolveModels(choice);
    this.defaultModel = choice.defaultModel;
    const withGpu = props.gpuWorkers !== false;
    if (!Token.isUnresolved(this.stackName)) checkStackModelsFit(models, this.stackName, withGpu);

    this.queues = new Queues(this, 'Queues');
    this.storage = new Storage(this, 'Storage', {
      uploadQueue: this.queues.incoming.queue,
      ...(props.warmWriteUnits ? { warmWriteUnits: props.warmWriteUnits } : {}),
    });
    const { imagesBucket, resultsBucket, resultsTable, jobsTable } = this.storage;
    const extraBuckets = (props.readableBuckets ?? []).map((name) =>
      s3.Bucket.fromBucketName(this, `Readable-${name}`, name),
    );
    const readableBuckets = [imagesBucket, ...extraBuckets];

    // Each model labels on its own function and queues; only the default's takes uploads.
    this.hostedModels = models.map((model) => {
      const image = new LabelerImage({ modelDir: model.dir });
      const queues: ModelQueues = model.legacy
        ? { jobs: this.queues.jobs, bulk: this.queues.bulk }
        : this.queues.addModel(model.name, { bulk: withGpu });
      const isDefault = model.name === this.defaultModel;
      const classify = new Classify(this, perModel(model, 'Classify'), {
        image,
        ...(isDefault ? { queue: this.queues.incoming.queue } : {}),
        jobsQueue: queues.jobs.queue,
        sizing: model.sizing,
        ...(model.legacy ? {} : { serviceName: `labeler-classify-${model.name}` }),
        imagesBucket,
        readableBuckets: extraBuckets,
        resultsBucket,
        resultsTable,
        jobsTable,
        planQueue: this.queues.plan.queue,
        ...(props.jobsMaxConcurrency ? { jobsMaxConcurrency: props.jobsMaxConcurrency } : {}),
      });
      return { model, image, queues, classify, isDefault };
    });
    const first = this.hostedModels[0] as HostedModelWorkers;
    this.classify = first.classify;
    // What plan-job routes by (ENV.stackModels) and the CLI reads (the Models output).
    const stackModels = (withDeadLetters: boolean) =>
      this.toJsonString({
        default: this.defaultModel,
        models: this.hostedModels.map(({ model, queues }) => ({
          name: model.name,
          id: model.manifest.id,
          version: model.manifest.version,
          jobsQueueUrl: queues.jobs.queue.queueUrl,
          ...(withGpu && queues.bulk ? { bulkQueueUrl: queues.bulk.queue.queueUrl } : {}),
          ...(withDeadLetters
            ? {
                jobsDlqUrl: queues.jobs.deadLetterQueue.queueUrl,
                ...(withGpu && queues.bulk ? { bulkDlqUrl: queues.bulk.deadLetterQueue.queueUrl } : {}),
              }
            : {}),
          objectsPerMessage: model.sizing.objectsPerMessage,
          // The CLI prices a job from the model's manifest, in this repository (the output only).
          ...(withDeadLetters ? { dir: model.dir } : {}),
        })),
      });
    // The functions' copy leaves out the dead-letter queues: none of them reads one, and
    // Lambda allows 4 KB of environment in all (decision 0038).
    const functionStackModels = stackModels(false);

    // The models by name, id and version, as a schedule's `model` names one.
    const namedModels = {
      default: this.defaultModel,
      models: this.hostedModels.map(({ model }) => ({
        name: model.name,
        id: model.manifest.id,
        version: model.manifest.version,
      })),
    };
    this.jobScheduler = new JobScheduler(this, 'Jobs', {
      // Planning reads no model file (its models are in ENV.stackModels): any image serves,
      // and the first model's stays put when the default changes.
      image: first.image,
      readableBuckets,
      planQueue: this.queues.plan,
      stackModels: functionStackModels,
      // The bulk queues only where GPU workers drain them (ENV.stackModels names no other).
      modelQueues: this.hostedModels.flatMap(({ queues }) => [
        queues.jobs.queue,
        ...(withGpu && queues.bulk ? [queues.bulk.queue] : []),
      ]),
      jobsTable,
      // A schedule without a bucket labels this stack's images bucket.
      schedules: (props.schedules ?? []).map((declared) => {
        const spec = validateSchedule({ bucket: imagesBucket.bucketName, ...declared });
        // A schedule over a bucket the stack cannot read would fail every firing: refuse it now.
        if (spec.bucket !== imagesBucket.bucketName && !props.readableBuckets?.includes(spec.bucket)) {
          throw new ScheduleError(
            `schedule "${spec.name}" labels s3://${spec.bucket}, which this stack cannot read: ` +
              'add the bucket to the "readableBuckets" list in cdk.json\'s context',
          );
        }
        // Likewise a model the stack does not host: every firing's job would be refused.
        if (spec.model !== undefined) {
          try {
            resolveHostedModel(namedModels, spec.model);
          } catch {
            throw new ScheduleError(
              `schedule "${spec.name}" labels with model "${spec.model}", which this stack does not host: ` +
                `name one of cdk.json's "models" (${namedModels.models.map((m) => m.name).join(', ')})`,
            );
          }
        }
        return spec;
      }),
    });
    this.queryApi = new QueryApi(this, 'Query', {
      // Queries read no model file (the default model is named in ENV.stackModels): the first
      // model's image stays put when the default changes.
      image: first.image,
      resultsTable,
      imagesBucket,
      stackModels: functionStackModels,
    });
    this.athena = new Athena(this, 'Athena', { resultsBucket });
    this.gpuWorkers =
      props.gpuWorkers === false
        ? undefined
        : new GpuWorkers(this, 'GpuWorkers', {
            models: this.hostedModels.map(({ model, image, queues }) => ({
              name: model.name,
              legacy: model.legacy,
              image,
              queue: (queues.bulk ?? this.queues.bulk).queue,
            })),
            imagesBucket,
            readableBuckets: extraBuckets,
            resultsBucket,
            resultsTable,
            jobsTable,
            createEcsServiceLinkedRole: props.createEcsServiceLinkedRole,
            instanceTypes:
              props.gpuInstanceTypes ?? (props.gpuInstanceType ? [props.gpuInstanceType] : undefined),
            spot: props.gpuSpot,
          });
    if (this.gpuWorkers && !cudaProviderPinned()) {
      // Said at synthesis, not an hour into a Docker build: the GPU image needs the real digest.
      Annotations.of(this.gpuWorkers).addWarningV2(
        'labeler:cuda-provider-unpinned',
        `${CUDA_PROVIDER_SHA256} holds a placeholder: the GPU image build stops at its checksum. ` +
          'Run "sh functions/cuda-provider-sha256.sh" (it needs the network) and commit the file, ' +
          'or deploy with -c gpuWorkers=false (docs/DEPLOY.md, "The CUDA provider checksum").',
      );
    }

    this.monitoring = new Monitoring(this, 'Monitoring', {
      queues: [
        { name: 'Incoming', workQueue: this.queues.incoming, maxMessageAge: Duration.minutes(15) },
        // Job images queue up by design: a long job is not a stuck one. Only waiting work
        // with nothing deleted for a while (no progress) pages someone; uploads have their own queue.
        ...this.hostedModels.flatMap(({ model, queues }) => [
          {
            name: monitoredName(model, 'Jobs'),
            workQueue: queues.jobs,
            noProgressAfter: Duration.minutes(ALARMS.jobsNoProgressMinutes),
          },
          // Bulk jobs are meant to queue up; hours-old items mean the GPU workers are not draining.
          ...(queues.bulk
            ? [
                {
                  name: monitoredName(model, 'Bulk'),
                  workQueue: queues.bulk,
                  maxMessageAge: Duration.hours(2),
                  // Work waiting and nothing deleted: no worker is draining it (no capacity, crashing tasks).
                  noProgressAfter: Duration.minutes(ALARMS.bulkNoProgressMinutes),
                },
              ]
            : []),
        ]),
        // A plan step waits behind at most a few others; an old one means planning is stuck.
        { name: 'Plan', workQueue: this.queues.plan, maxMessageAge: Duration.minutes(30) },
      ],
      functions: [
        ...this.hostedModels.map(({ model, classify }) => ({
          name: monitoredName(model, 'Classify'),
          function: classify.function,
          alarmOnErrors: true,
        })),
        { name: 'PlanJob', function: this.jobScheduler.function, alarmOnErrors: true },
        { name: 'Query', function: this.queryApi.function, alarmOnErrors: false },
      ],
      tables: [
        {
          name: 'Results',
          table: resultsTable,
          indexNames: [RESULTS_TABLE.labelIndex.name, RESULTS_TABLE.rank2Index.name],
        },
        { name: 'Jobs', table: jobsTable, indexNames: [JOBS_TABLE.listIndex.name] },
      ],
      gpuWorkerLogs: this.gpuWorkers?.logGroup,
      gpuFleet: this.gpuWorkers && {
        service: this.gpuWorkers.service,
        autoScalingGroup: this.gpuWorkers.autoScalingGroup,
        otherServices: this.gpuWorkers.services.slice(1),
      },
      // The Powertools `service` of every process that labels images (their ImagesFailed share).
      labelingServices: [
        ...this.hostedModels.map(({ classify }) => classify.function.serviceName),
        ...(this.gpuWorkers?.services.map((s) => s.serviceName) ?? []),
      ],
      // Each declared schedule's runs send their label drift (decision 0039): one alarm each.
      driftSchedules: (props.schedules ?? []).map((declared) => String(declared.name)),
      alarmEmail: props.alarmEmail,
      extraWidgets: this.gpuWorkers
        ? [
            new cloudwatch.GraphWidget({
              title: 'GPU workers: bulk backlog',
              left: this.gpuWorkers.services.map((s) => s.backlog),
            }),
          ]
        : [],
    });

    const outputs: Record<string, string> = {
      ImagesBucket: imagesBucket.bucketName,
      ResultsBucket: resultsBucket.bucketName,
      ResultsTable: resultsTable.tableName,
      JobsTable: jobsTable.tableName,
      IncomingQueueUrl: this.queues.incoming.queue.queueUrl,
      IncomingDlqUrl: this.queues.incoming.deadLetterQueue.queueUrl,
      JobsQueueUrl: this.queues.jobs.queue.queueUrl,
      JobsDlqUrl: this.queues.jobs.deadLetterQueue.queueUrl,
      // `jobs start --bucket` refuses any other bucket before planning (shared/labeling/jobs.ts).
      ReadableBuckets: Fn.join(
        ',',
        readableBuckets.map((b) => b.bucketName),
      ),
      BulkQueueUrl: this.queues.bulk.queue.queueUrl,
      BulkDlqUrl: this.queues.bulk.deadLetterQueue.queueUrl,
      PlanQueueUrl: this.queues.plan.queue.queueUrl,
      PlanQueueArn: this.queues.plan.queue.queueArn,
      PlanDlqUrl: this.queues.plan.deadLetterQueue.queueUrl,
      PlanDlqArn: this.queues.plan.deadLetterQueue.queueArn,
      QueryApiUrl: this.queryApi.url,
      GlueDatabase: this.athena.databaseName,
      GlueTable: this.athena.tableName,
      ScheduleGroupName: this.jobScheduler.scheduleGroup.scheduleGroupName,
      SchedulerRoleArn: this.jobScheduler.schedulerRole.roleArn,
      PlanJobFunctionArn: this.jobScheduler.function.functionArn,
      DashboardName: this.monitoring.dashboard.dashboardName,
      // `jobs start --dry-run` estimates wall time at what this stack was deployed with.
      JobsCapacity: JSON.stringify(jobsCapacityOutput(props)),
      AlarmTopicArn: this.monitoring.topic.topicArn,
      // The hosted models, their queues and the default (shared/labeling/stack-models.ts).
      Models: stackModels(true),
      // Present only with GPU workers: `jobs start --target auto` reads it to price the GPU side.
      // The first (preferred) type when several are allowed.
      ...(this.gpuWorkers
        ? {
            GpuInstanceType: this.gpuWorkers.instanceType,
            // For the runbook (docs/DEPLOY.md): `aws ecs describe-services`, `aws autoscaling ...`.
            GpuClusterName: this.gpuWorkers.cluster.clusterName,
            GpuServiceName: this.gpuWorkers.service.serviceName,
            GpuAutoScalingGroupName: this.gpuWorkers.autoScalingGroup.autoScalingGroupName,
            GpuWorkerLogGroup: this.gpuWorkers.logGroup.logGroupName,
          }
        : {}),
    };
    for (const [name, value] of Object.entries(outputs)) new CfnOutput(this, name, { value });
  }
}

/** The capacity a deploy chose, as the JobsCapacity output (read by shared/labeling/job-estimate's callers). */
export function jobsCapacityOutput(props: Pick<LabelerStackProps, 'jobsMaxConcurrency' | 'warmWriteUnits'>): {
  jobsMaxConcurrency: number;
  resultsWarmWriteUnits: number;
  jobsWarmWriteUnits: number;
} {
  return {
    jobsMaxConcurrency: props.jobsMaxConcurrency ?? JOB_IMAGES.maxConcurrency,
    resultsWarmWriteUnits: props.warmWriteUnits?.results ?? TABLE_WARM_THROUGHPUT.resultsWriteUnitsPerSecond,
    jobsWarmWriteUnits: props.warmWriteUnits?.jobs ?? TABLE_WARM_THROUGHPUT.jobsWriteUnitsPerSecond,
  };
}
