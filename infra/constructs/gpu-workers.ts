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
import { ENV, GPU_INSTANCE_SIZES, GPU_WORKER } from '../../shared/settings.ts';
import { perModel } from '../hosted-models.ts';
import type { LabelerImage } from '../image.ts';
import { bindResultWriter, IMAGE_MODEL_DIR } from './classify.ts';
import { bindQueue, containerWorkload } from './env-binding.ts';
import { grantImageReads } from './grants.ts';

/** What the ECS agent, the OS and the page cache keep of each instance. */
const HOST_RESERVE = { vcpus: 1, memoryGiB: 4 } as const;

/**
 * The worker container's CPU units and memory reservation on one instance of this type:
 * the whole instance less the host's share. Throws for a type not in GPU_INSTANCE_SIZES.
 */
export function gpuTaskSize(instanceType: string): {
  vcpus: number;
  cpu: number;
  memoryReservationMiB: number;
} {
  const size = GPU_INSTANCE_SIZES[instanceType];
  if (!size) {
    throw new Error(
      `GPU instance type ${instanceType} has no known size; use one of ${Object.keys(GPU_INSTANCE_SIZES).join(', ')} or add it to GPU_INSTANCE_SIZES`,
    );
  }
  return {
    vcpus: size.vcpus,
    cpu: (size.vcpus - HOST_RESERVE.vcpus) * 1024,
    memoryReservationMiB: (size.memoryGiB - HOST_RESERVE.memoryGiB) * 1024,
  };
}

/**
 * The task size that fits every one of these instance types (the smallest vCPU count and
 * memory among them): the Auto Scaling group may launch any of them.
 */
export function gpuTaskSizeForAll(instanceTypes: readonly string[]): ReturnType<typeof gpuTaskSize> {
  if (instanceTypes.length === 0) throw new Error('at least one GPU instance type is needed');
  const sizes = instanceTypes.map(gpuTaskSize);
  return {
    vcpus: Math.min(...sizes.map((s) => s.vcpus)),
    cpu: Math.min(...sizes.map((s) => s.cpu)),
    memoryReservationMiB: Math.min(...sizes.map((s) => s.memoryReservationMiB)),
  };
}

/** Powertools service name of the GPU worker: its logs and metrics carry it. */
export const GPU_WORKER_SERVICE_NAME = 'labeler-gpu-worker';

/** One hosted model's GPU workers: its image, the queue they drain, the ids they get. */
export interface GpuWorkerModel {
  readonly name: string;
  /** Keeps a one-model stack's ids (`Task`, `Service`): the first model (decision 0038). */
  readonly legacy: boolean;
  readonly image: LabelerImage;
  /** Queue of the model's planned job items. */
  readonly queue: sqs.IQueue;
}

/** The task definition and service of one model, scaled on its own queue's backlog. */
export interface GpuModelService {
  readonly name: string;
  readonly taskDefinition: ecs.Ec2TaskDefinition;
  readonly container: ecs.ContainerDefinition;
  readonly service: ecs.Ec2Service;
  /** Visible plus in-flight messages of the model's queue: what its task count follows. */
  readonly backlog: cloudwatch.MathExpression;
  /** Powertools service name of its workers. */
  readonly serviceName: string;
}

export interface GpuWorkersProps {
  /**
   * The hosted models, each with its own task definition (its image) and service on the
   * shared cluster and instances. At least one.
   */
  readonly models: readonly GpuWorkerModel[];
  readonly imagesBucket: s3.IBucket;
  /**
   * Buckets besides the images bucket whose objects jobs may label (cdk.json `readableBuckets`).
   * @default - none
   */
  readonly readableBuckets?: readonly s3.IBucket[];
  readonly resultsBucket: s3.IBucket;
  readonly resultsTable: dynamodb.ITable;
  /** Where the images of labeling jobs are counted. */
  readonly jobsTable: dynamodb.ITable;
  /**
   * EC2 instance types, each one of GPU_INSTANCE_SIZES, most preferred first; one task (one
   * GPU) per instance. The Auto Scaling group launches whichever has capacity; the task's
   * CPU, memory and decode threads fit the smallest.
   * @default GPU_WORKER.instanceTypes
   */
  readonly instanceTypes?: readonly string[];
  /**
   * Launch Spot instances (price-capacity-optimized across the types, no on-demand base)
   * instead of on-demand ones.
   * @default GPU_WORKER.spot (false)
   */
  readonly spot?: boolean;
  /**
   * Whether the worker may run on the CPU when CUDA cannot load.
   * @default GPU_WORKER.allowCpuFallback (false: the task exits and the alarm fires)
   */
  readonly allowCpuFallback?: boolean;
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
   * Create the ECS service-linked role (AWSServiceRoleForECS). An account that never used
   * ECS lacks it and the capacity provider fails to create; an account that has it fails
   * if the stack creates it again, hence a flag (`-c createEcsServiceLinkedRole=true`;
   * `labeler doctor` says which case applies).
   * @default false
   */
  readonly createEcsServiceLinkedRole?: boolean;
  /**
   * Log level.
   * @default 'INFO'
   */
  readonly logLevel?: string;
}

/**
 * GPU workers draining the models' bulk queues: a VPC with public subnets only (no NAT
 * gateway; no inbound rules; S3 and DynamoDB through free gateway endpoints), an
 * ECS cluster on an Auto Scaling group of GPU instances (Amazon Linux 2023 ECS GPU AMI,
 * 0..maxTasks) behind a capacity provider with managed scaling, and per hosted model an EC2
 * service whose task (that model's image) asks for one GPU. The models share the instances:
 * maxTasks bounds the fleet, not each model.
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
  /** The first model's (a one-model stack's) task definition, container, service and backlog. */
  readonly taskDefinition: ecs.Ec2TaskDefinition;
  readonly container: ecs.ContainerDefinition;
  readonly service: ecs.Ec2Service;
  readonly backlog: cloudwatch.MathExpression;
  /** Every model's service, the first model's first. */
  readonly services: readonly GpuModelService[];
  /** Every model's workers log here (one JSON line per event; the no-CUDA alarm filters them). */
  readonly logGroup: logs.LogGroup;
  /** The preferred EC2 instance type (a stack output: `jobs start --target auto` prices it). */
  readonly instanceType: string;
  /** Every instance type the group may launch, most preferred first. */
  readonly instanceTypes: readonly string[];

  constructor(scope: Construct, id: string, props: GpuWorkersProps) {
    super(scope, id);
    const maxTasks = props.maxTasks ?? GPU_WORKER.maxTasks;
    this.instanceTypes = props.instanceTypes ?? GPU_WORKER.instanceTypes;
    if (new Set(this.instanceTypes).size !== this.instanceTypes.length) {
      throw new Error(`GPU instance types repeat: ${this.instanceTypes.join(', ')}`);
    }
    const taskSize = gpuTaskSizeForAll(this.instanceTypes);
    this.instanceType = this.instanceTypes[0] as string;
    const spot = props.spot ?? GPU_WORKER.spot;
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

    // Container Insights publishes the service's RunningTaskCount and DesiredTaskCount,
    // which the too-few-GPU-tasks alarm compares.
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
    // On a Spot interruption notice the agent drains the instance: the task gets its stop
    // timeout to finish the batch in hand, and unfinished messages return to the queue.
    if (spot) userData.addCommands('echo ECS_ENABLE_SPOT_INSTANCE_DRAINING=true >> /etc/ecs/ecs.config');
    // No instance type here: the group's mixed instances policy lists them.
    const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      // Amazon Linux 2 (and its ECS GPU AMI) reached end of support; AL2023's GPU variant
      // ships the NVIDIA driver and container toolkit the CUDA 12 image needs.
      machineImage: ecs.EcsOptimizedImage.amazonLinux2023(ecs.AmiHardwareType.GPU),
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
      mixedInstancesPolicy: {
        launchTemplate,
        launchTemplateOverrides: this.instanceTypes.map((type) => ({
          instanceType: new ec2.InstanceType(type),
        })),
        instancesDistribution: spot
          ? {
              onDemandBaseCapacity: 0,
              onDemandPercentageAboveBaseCapacity: 0,
              spotAllocationStrategy: autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
            }
          : {
              onDemandBaseCapacity: 0,
              onDemandPercentageAboveBaseCapacity: 100,
              onDemandAllocationStrategy: autoscaling.OnDemandAllocationStrategy.PRIORITIZED,
            },
      },
      // Spot: launch a replacement when EC2 signals an elevated interruption risk.
      capacityRebalance: spot,
      minCapacity: 0,
      maxCapacity: maxTasks,
      // Free at one-minute granularity; the instances-short alarm compares these two.
      groupMetrics: [
        new autoscaling.GroupMetrics(
          autoscaling.GroupMetric.DESIRED_CAPACITY,
          autoscaling.GroupMetric.IN_SERVICE_INSTANCES,
        ),
      ],
    });
    this.capacityProvider = new ecs.AsgCapacityProvider(this, 'CapacityProvider', {
      autoScalingGroup: this.autoScalingGroup,
      enableManagedScaling: true,
      enableManagedTerminationProtection: true,
      targetCapacityPercent: 100,
      minimumScalingStepSize: 1,
    });
    this.cluster.addAsgCapacityProvider(this.capacityProvider);
    if (props.createEcsServiceLinkedRole) {
      const serviceLinkedRole = new iam.CfnServiceLinkedRole(this, 'EcsServiceLinkedRole', {
        awsServiceName: 'ecs.amazonaws.com',
        description: 'Lets ECS manage the GPU capacity provider (created by Labeler in a fresh account)',
      });
      this.capacityProvider.node.addDependency(serviceLinkedRole);
      this.cluster.node.addDependency(serviceLinkedRole);
    }
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
      id: 'AwsSolutions-EC26',
      reason:
        "cdk-nag cannot follow a mixed instances policy to its launch template (the rule throws); the launch template's only volume, the root volume, is encrypted (test/infra/stack.test.ts).",
    });
    Validations.of(this.autoScalingGroup).acknowledge({
      id: 'AwsSolutions-AS3',
      reason:
        "The ECS capacity provider owns this group's size; scaling activity is in the group's activity history and ECS service events, and nobody would subscribe to per-instance notifications.",
    });

    this.logGroup = new logs.LogGroup(this, 'WorkerLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    if (props.models.length === 0) throw new Error('GPU workers need at least one model');
    this.services = props.models.map((model, index) =>
      this.#modelService(model, index, props, { taskSize, maxTasks, backlogSteps }),
    );
    const first = this.services[0] as GpuModelService;
    this.taskDefinition = first.taskDefinition;
    this.container = first.container;
    this.service = first.service;
    this.backlog = first.backlog;
  }

  #modelService(
    model: GpuWorkerModel,
    index: number,
    props: GpuWorkersProps,
    sizes: { taskSize: ReturnType<typeof gpuTaskSize>; maxTasks: number; backlogSteps: readonly number[] },
  ): GpuModelService {
    const { taskSize, maxTasks, backlogSteps } = sizes;
    // The first model keeps a one-model stack's ids, so an upgrade replaces nothing.
    const id = (base: string) => perModel(model, base);
    const serviceName = model.legacy ? GPU_WORKER_SERVICE_NAME : `${GPU_WORKER_SERVICE_NAME}-${model.name}`;
    const taskDefinition = new ecs.Ec2TaskDefinition(this, id('Task'));
    const allowCpuFallback = props.allowCpuFallback ?? GPU_WORKER.allowCpuFallback;
    const container = taskDefinition.addContainer('worker', {
      image: model.image.gpuImage(),
      gpuCount: 1,
      cpu: taskSize.cpu,
      memoryReservationMiB: taskSize.memoryReservationMiB,
      stopTimeout: Duration.seconds(120),
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: id('gpu-worker'), logGroup: this.logGroup }),
      environment: {
        [ENV.modelDir]: IMAGE_MODEL_DIR,
        [ENV.executionProviders]: 'cuda',
        [ENV.allowCpuFallback]: String(allowCpuFallback),
        [ENV.inferenceBatchSize]: String(GPU_WORKER.batchSize),
        // Decoding runs on libuv's pool, sized once at start-up: one thread per vCPU.
        [ENV.uvThreadpoolSize]: String(taskSize.vcpus),
        [ENV.decodeConcurrency]: String(taskSize.vcpus),
        [ENV.region]: Stack.of(this).region,
        [ENV.logLevel]: props.logLevel ?? 'INFO',
        [ENV.serviceName]: serviceName,
        [ENV.ortDisableTelemetry]: '1',
      },
    });
    const workload = containerWorkload(taskDefinition, container);
    bindQueue(workload, { url: ENV.bulkQueueUrl, arn: ENV.bulkQueueArn }, model.queue, [
      'sqs:ReceiveMessage',
      'sqs:DeleteMessage',
      'sqs:ChangeMessageVisibility',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
    ]);
    bindResultWriter(workload, props);
    // Job items name their bucket and key: the buckets are not variables.
    grantImageReads((s) => taskDefinition.addToTaskRolePolicy(s), taskDefinition, [
      props.imagesBucket,
      ...(props.readableBuckets ?? []),
    ]);
    Validations.of(taskDefinition).acknowledge(
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

    const service = new ecs.Ec2Service(this, id('Service'), {
      cluster: this.cluster,
      taskDefinition,
      desiredCount: 0,
      // One GPU per instance: replace tasks in place rather than needing a spare GPU.
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      circuitBreaker: { rollback: true },
      capacityProviderStrategies: [
        { capacityProvider: this.capacityProvider.capacityProviderName, weight: 1 },
      ],
    });

    // Metric ids unique across models: the dashboard graphs every backlog in one widget.
    const n = model.legacy ? '' : String(index);
    const backlog = new cloudwatch.MathExpression({
      label: model.legacy
        ? 'Bulk queue backlog (visible + in flight)'
        : `Bulk queue backlog of ${model.name} (visible + in flight)`,
      expression: `visible${n} + inFlight${n}`,
      usingMetrics: {
        [`visible${n}`]: model.queue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(1),
        }),
        [`inFlight${n}`]: model.queue.metricApproximateNumberOfMessagesNotVisible({
          period: Duration.minutes(1),
        }),
      },
      period: Duration.minutes(1),
    });
    // Each model's service follows its own queue; the instances they share are capped at maxTasks.
    const scaling = service.autoScaleTaskCount({ minCapacity: 0, maxCapacity: maxTasks });
    scaling.scaleOnMetric('QueueBacklog', {
      metric: backlog,
      adjustmentType: appscaling.AdjustmentType.EXACT_CAPACITY,
      scalingSteps: [
        { upper: 0, change: 0 },
        ...backlogSteps.map((lower, i) => ({ lower, change: Math.min(i + 1, maxTasks) })),
      ],
      evaluationPeriods: 3,
      cooldown: Duration.minutes(2),
    });
    return { name: model.name, taskDefinition, container, service, backlog, serviceName };
  }
}
