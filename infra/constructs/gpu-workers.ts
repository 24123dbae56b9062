import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { GPU_WORKER, RESULTS_PREFIX } from '../../shared/settings.ts';
import type { LabelerImage } from '../image.ts';
import { IMAGE_MODEL_DIR, RESULT_WRITER_ACTIONS } from './classify.ts';
import { acknowledgeObjectPattern, tableStatement } from './grants.ts';

export interface GpuWorkersProps {
  readonly image: LabelerImage;
  /** Queue of planned job items. */
  readonly queue: sqs.IQueue;
  readonly imagesBucket: s3.IBucket;
  readonly resultsBucket: s3.IBucket;
  readonly resultsTable: dynamodb.ITable;
  readonly jobsTable: dynamodb.ITable;
  /**
   * EC2 instance type; one task (one GPU) per instance.
   * @default GPU_WORKER.instanceType
   */
  readonly instanceType?: ec2.InstanceType;
  /**
   * Most tasks (and instances) running at once.
   * @default GPU_WORKER.maxTasks
   */
  readonly maxTasks?: number;
  /**
   * Backlog (visible + in-flight messages) at which each task count is reached,
   * lowest first: backlog >= steps[i] runs i + 1 tasks (capped at maxTasks).
   * @default [1, 500, 2000, 5000]
   */
  readonly backlogSteps?: readonly number[];
  /**
   * Log level.
   * @default 'INFO'
   */
  readonly logLevel?: string;
}

/**
 * GPU workers draining the bulk queue: a VPC with public subnets only (no NAT
 * gateway; no inbound rules; S3 and DynamoDB through free gateway endpoints), an
 * ECS cluster on an Auto Scaling group of GPU instances (ECS GPU-optimised AMI,
 * 0..maxTasks) behind a capacity provider with managed scaling, and an EC2 service
 * whose task asks for one GPU.
 *
 * Task count follows the queue backlog with step scaling, down to zero. There is
 * deliberately no CPU-based scaling: a CPU scale-in would stop a task in the middle
 * of a batch (aws-cdk issue 20706). Scale-in to zero waits until no message is in
 * flight, so a running batch is never cut short by the scaler.
 */
export class GpuWorkers extends Construct {
  readonly vpc: ec2.Vpc;
  readonly cluster: ecs.Cluster;
  readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  readonly capacityProvider: ecs.AsgCapacityProvider;
  readonly taskDefinition: ecs.Ec2TaskDefinition;
  readonly service: ecs.Ec2Service;
  /** The metric the task count follows: visible plus in-flight messages. */
  readonly backlog: cloudwatch.MathExpression;

  constructor(scope: Construct, id: string, props: GpuWorkersProps) {
    super(scope, id);
    const maxTasks = props.maxTasks ?? GPU_WORKER.maxTasks;
    const backlogSteps = props.backlogSteps ?? [1, 500, 2000, 5000];
    if (maxTasks < 1) throw new Error('maxTasks must be at least 1');
    if (
      backlogSteps.length === 0 ||
      backlogSteps.some((s, i) => s < 1 || (i > 0 && s <= (backlogSteps[i - 1] ?? 0)))
    ) {
      throw new Error('backlogSteps must be increasing positive numbers');
    }

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 3,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
    });
    this.vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(
        new logs.LogGroup(this, 'FlowLogs', {
          retention: logs.RetentionDays.ONE_WEEK,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
      ),
      trafficType: ec2.FlowLogTrafficType.REJECT,
    });

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });

    const securityGroup = new ec2.SecurityGroup(this, 'InstanceSecurityGroup', {
      vpc: this.vpc,
      description: 'GPU workers: outbound only, no inbound',
      allowAllOutbound: true,
    });
    const userData = ec2.UserData.forLinux();
    userData.addCommands('echo ECS_ENABLE_GPU_SUPPORT=true >> /etc/ecs/ecs.config');
    const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      instanceType: props.instanceType ?? new ec2.InstanceType(GPU_WORKER.instanceType),
      machineImage: ecs.EcsOptimizedImage.amazonLinux2(ecs.AmiHardwareType.GPU),
      role: new iam.Role(this, 'InstanceRole', {
        assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
        description: 'ECS container instances of the GPU workers',
      }),
      securityGroup,
      userData,
      // IMDSv2 with one hop: containers (bridge network, one hop further) cannot reach the
      // instance metadata service, so they cannot borrow the instance role.
      requireImdsv2: true,
      httpPutResponseHopLimit: 1,
      associatePublicIpAddress: true,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(100, {
            encrypted: true,
            volumeType: ec2.EbsDeviceVolumeType.GP3,
          }),
        },
      ],
    });
    this.autoScalingGroup = new autoscaling.AutoScalingGroup(this, 'Instances', {
      vpc: this.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      launchTemplate,
      minCapacity: 0,
      maxCapacity: maxTasks,
    });
    this.capacityProvider = new ecs.AsgCapacityProvider(this, 'CapacityProvider', {
      autoScalingGroup: this.autoScalingGroup,
      enableManagedScaling: true,
      enableManagedTerminationProtection: true,
      targetCapacityPercent: 100,
      minimumScalingStepSize: 1,
    });
    this.cluster.addAsgCapacityProvider(this.capacityProvider);
    Validations.of(launchTemplate.role ?? this.autoScalingGroup).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'ECS container-instance permissions written by CDK (as AmazonEC2ContainerServiceforEC2Role): ecs:DiscoverPollEndpoint, ecr:GetAuthorizationToken and logs calls have no resource-level permissions; cluster-scoped calls are conditioned on the cluster ARN.',
      },
      {
        id: 'AwsSolutions-IAM5[Action::ecs:Submit*]',
        reason:
          'ECS container-instance permissions written by CDK: the agent reports task and container state changes (ecs:SubmitTaskStateChange, ecs:SubmitContainerStateChange, ...) on this cluster only.',
      },
    );
    Validations.of(this.autoScalingGroup).acknowledge({
      id: 'AwsSolutions-AS3',
      reason:
        "The ECS capacity provider owns this group's size; scaling activity is in the group's activity history and ECS service events, and nobody would subscribe to per-instance notifications.",
    });

    this.taskDefinition = new ecs.Ec2TaskDefinition(this, 'Task');
    this.taskDefinition.addContainer('worker', {
      image: props.image.gpuImage(),
      gpuCount: 1,
      // g5.xlarge: 4 vCPU, 16 GiB; leave room for the ECS agent.
      cpu: 3072,
      memoryReservationMiB: 12 * 1024,
      stopTimeout: Duration.seconds(120),
      logging: ecs.LogDrivers.awsLogs({
        streamPrefix: 'gpu-worker',
        logGroup: new logs.LogGroup(this, 'WorkerLogs', {
          retention: logs.RetentionDays.ONE_MONTH,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
      }),
      environment: {
        BULK_QUEUE_URL: props.queue.queueUrl,
        RESULTS_TABLE: props.resultsTable.tableName,
        JOBS_TABLE: props.jobsTable.tableName,
        RESULTS_BUCKET: props.resultsBucket.bucketName,
        MODEL_DIR: IMAGE_MODEL_DIR,
        EXECUTION_PROVIDERS: 'cuda',
        INFERENCE_BATCH_SIZE: String(GPU_WORKER.batchSize),
        AWS_REGION: Stack.of(this).region,
        LOG_LEVEL: props.logLevel ?? 'INFO',
        POWERTOOLS_SERVICE_NAME: 'labeler-gpu-worker',
        ORT_DISABLE_TELEMETRY: '1',
      },
    });

    props.queue.grantConsumeMessages(this.taskDefinition.taskRole);
    this.taskDefinition.addToTaskRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [props.imagesBucket.arnForObjects('*')],
      }),
    );
    this.taskDefinition.addToTaskRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject'],
        resources: [props.resultsBucket.arnForObjects(`${RESULTS_PREFIX}/*`)],
      }),
    );
    this.taskDefinition.addToTaskRolePolicy(tableStatement(props.resultsTable, RESULT_WRITER_ACTIONS));
    this.taskDefinition.addToTaskRolePolicy(tableStatement(props.jobsTable, ['dynamodb:UpdateItem']));
    acknowledgeObjectPattern(
      this.taskDefinition,
      props.imagesBucket,
      '*',
      'Jobs label any prefix of the images bucket chosen at run time; GetObject only.',
    );
    acknowledgeObjectPattern(
      this.taskDefinition,
      props.resultsBucket,
      `${RESULTS_PREFIX}/*`,
      'Writes one JSON Lines object per batch under the results prefix; key names are generated, PutObject only.',
    );
    Validations.of(this.taskDefinition).acknowledge(
      {
        id: 'AwsSolutions-ECS2',
        reason:
          'The environment holds resource names and tuning values only (queue URL, table and bucket names, batch size); no secrets.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'Execution role written by CDK: ecr:GetAuthorizationToken has no resource-level permissions; image pulls are scoped to the asset repository.',
      },
    );

    this.service = new ecs.Ec2Service(this, 'Service', {
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: 0,
      // One GPU per instance: replace tasks in place rather than needing a spare GPU.
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      circuitBreaker: { rollback: true },
      capacityProviderStrategies: [
        { capacityProvider: this.capacityProvider.capacityProviderName, weight: 1 },
      ],
    });

    this.backlog = new cloudwatch.MathExpression({
      label: 'Bulk queue backlog (visible + in flight)',
      expression: 'visible + inFlight',
      usingMetrics: {
        visible: props.queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1) }),
        inFlight: props.queue.metricApproximateNumberOfMessagesNotVisible({ period: Duration.minutes(1) }),
      },
      period: Duration.minutes(1),
    });
    const scaling = this.service.autoScaleTaskCount({ minCapacity: 0, maxCapacity: maxTasks });
    scaling.scaleOnMetric('QueueBacklog', {
      metric: this.backlog,
      adjustmentType: appscaling.AdjustmentType.EXACT_CAPACITY,
      scalingSteps: [
        { upper: 0, change: 0 },
        ...backlogSteps.map((lower, i) => ({ lower, change: Math.min(i + 1, maxTasks) })),
      ],
      evaluationPeriods: 3,
      cooldown: Duration.minutes(2),
    });
  }
}
