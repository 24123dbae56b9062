import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { Construct } from 'constructs';
import { Classify } from './constructs/classify.ts';
import { GpuWorkers } from './constructs/gpu-workers.ts';
import { JobScheduler } from './constructs/job-scheduler.ts';
import { Monitoring } from './constructs/monitoring.ts';
import { QueryApi } from './constructs/query-api.ts';
import { Queues } from './constructs/queues.ts';
import { Storage } from './constructs/storage.ts';
import { LabelerImage } from './image.ts';

export interface LabelerStackProps extends StackProps {
  /**
   * Model folder baked into the images, relative to the repository root.
   * @default 'models/fashion-efficientnet'
   */
  readonly modelDir?: string;
  /**
   * Whether to create the GPU workers (VPC, ECS cluster, GPU Auto Scaling group).
   * @default true
   */
  readonly gpuWorkers?: boolean;
}

/** The whole pipeline: S3 -> SQS -> Lambda/ECS GPU -> DynamoDB + S3, plus jobs, queries, monitoring. */
export class LabelerStack extends Stack {
  readonly storage: Storage;
  readonly queues: Queues;
  readonly classify: Classify;
  readonly jobScheduler: JobScheduler;
  readonly queryApi: QueryApi;
  readonly gpuWorkers: GpuWorkers | undefined;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: LabelerStackProps = {}) {
    super(scope, id, props);
    const image = new LabelerImage({ modelDir: props.modelDir });

    this.queues = new Queues(this, 'Queues');
    this.storage = new Storage(this, 'Storage', { uploadQueue: this.queues.incoming.queue });
    const { imagesBucket, resultsBucket, resultsTable, jobsTable } = this.storage;

    this.classify = new Classify(this, 'Classify', {
      image,
      queue: this.queues.incoming.queue,
      imagesBucket,
      resultsBucket,
      resultsTable,
    });
    this.jobScheduler = new JobScheduler(this, 'Jobs', {
      image,
      imagesBucket,
      bulkQueue: this.queues.bulk.queue,
      jobsTable,
    });
    this.queryApi = new QueryApi(this, 'Query', { image, resultsTable, jobsTable, imagesBucket });
    this.gpuWorkers =
      props.gpuWorkers === false
        ? undefined
        : new GpuWorkers(this, 'GpuWorkers', {
            image,
            queue: this.queues.bulk.queue,
            imagesBucket,
            resultsBucket,
            resultsTable,
            jobsTable,
          });

    this.monitoring = new Monitoring(this, 'Monitoring', {
      queues: [
        { name: 'Incoming', workQueue: this.queues.incoming },
        { name: 'Bulk', workQueue: this.queues.bulk },
      ],
      ageAlarmQueue: this.queues.incoming,
      classifyFunction: this.classify.function,
      extraWidgets: this.gpuWorkers
        ? [
            new cloudwatch.GraphWidget({
              title: 'GPU workers: bulk backlog',
              left: [this.gpuWorkers.backlog],
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
      BulkQueueUrl: this.queues.bulk.queue.queueUrl,
      BulkDlqUrl: this.queues.bulk.deadLetterQueue.queueUrl,
      QueryApiUrl: this.queryApi.url,
      ScheduleGroupName: this.jobScheduler.scheduleGroup.scheduleGroupName,
      SchedulerRoleArn: this.jobScheduler.schedulerRole.roleArn,
      PlanJobFunctionArn: this.jobScheduler.function.functionArn,
      DashboardName: this.monitoring.dashboard.dashboardName,
    };
    for (const [name, value] of Object.entries(outputs)) new CfnOutput(this, name, { value });
  }
}
