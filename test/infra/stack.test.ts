import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { DEFAULT_MODEL_DIR, HANDLERS } from '../../infra/image.ts';
import {
  CLASSIFY,
  GPU_WORKER,
  JOB_IMAGES,
  JOBS_TABLE,
  RESULTS_PREFIX,
  RESULTS_TABLE,
  UPLOAD_FILTER,
} from '../../shared/settings.ts';
import { referencedId, resourcesOf, statementsOfRole, synthesizeLabeler } from './support.ts';

// Arrange, once for the file: the real app, cdk-nag included, synthesized once.
const synth = synthesizeLabeler();
const { stack, template } = synth;
after(() => synth.cleanup());

function idOf(construct: IConstruct): string {
  return Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
}
const incomingId = idOf(stack.queues.incoming.queue);
const bulkId = idOf(stack.queues.bulk.queue);
const incomingDlqId = idOf(stack.queues.incoming.deadLetterQueue);
const jobsQueueId = idOf(stack.queues.jobs.queue);
const jobsDlqId = idOf(stack.queues.jobs.deadLetterQueue);
const bulkDlqId = idOf(stack.queues.bulk.deadLetterQueue);

function functionRoleId(fn: IConstruct): string {
  const props = resourcesOf(template, 'AWS::Lambda::Function')[idOf(fn)]?.Properties;
  const roleId = referencedId(props?.Role);
  assert.ok(roleId, `function ${fn.node.path} has a role`);
  return roleId;
}

describe('classify event source', () => {
  it('reports batch item failures with batch size, window and concurrency from CLASSIFY', () => {
    // Uploads, job images, and the plan-job function's plan queue (test/infra/jobs.test.ts).
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 3);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: idOf(stack.classify.function) },
      EventSourceArn: { 'Fn::GetAtt': [incomingId, 'Arn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      // Sized from the baked-in model's cost per image (shared/labeling/invocation-budget.ts).
      BatchSize: stack.classify.sizing.uploadBatchSize,
      MaximumBatchingWindowInSeconds: CLASSIFY.maxBatchingWindowSeconds,
      ScalingConfig: { MaximumConcurrency: CLASSIFY.maxConcurrency },
    });
  });

  it('takes job images from a queue of their own, scaled on its own, so a job never delays an upload', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: idOf(stack.classify.function) },
      EventSourceArn: { 'Fn::GetAtt': [jobsQueueId, 'Arn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: stack.classify.sizing.jobBatchSize,
      MaximumBatchingWindowInSeconds: JOB_IMAGES.maxBatchingWindowSeconds,
      ScalingConfig: { MaximumConcurrency: JOB_IMAGES.maxConcurrency },
    });
    const queues = resourcesOf(template, 'AWS::SQS::Queue');
    assert.deepEqual(queues[jobsQueueId]?.Properties?.RedrivePolicy, {
      deadLetterTargetArn: { 'Fn::GetAtt': [jobsDlqId, 'Arn'] },
      maxReceiveCount: CLASSIFY.maxReceiveCount,
    });
    assert.ok(Number(queues[jobsQueueId]?.Properties?.VisibilityTimeout) >= 6 * CLASSIFY.timeoutSeconds);
  });

  it('gives the incoming queue at least six times the function timeout as visibility timeout', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      ImageConfig: { Command: [HANDLERS.classify] },
      Timeout: CLASSIFY.timeoutSeconds,
      MemorySize: CLASSIFY.memoryMb,
    });
    const queue = resourcesOf(template, 'AWS::SQS::Queue')[incomingId];
    assert.ok(Number(queue?.Properties?.VisibilityTimeout) >= 6 * CLASSIFY.timeoutSeconds);
    assert.equal(
      resourcesOf(template, 'AWS::SQS::Queue')[bulkId]?.Properties?.VisibilityTimeout,
      GPU_WORKER.visibilityTimeoutSeconds,
    );
  });
});

describe('queues', () => {
  const queues = resourcesOf(template, 'AWS::SQS::Queue');

  it('sends every work queue to a dead-letter queue after maxReceiveCount from settings', () => {
    const planIds = [idOf(stack.queues.plan.queue), idOf(stack.queues.plan.deadLetterQueue)];
    assert.deepEqual(
      Object.keys(queues).sort(),
      [incomingId, jobsQueueId, bulkId, incomingDlqId, jobsDlqId, bulkDlqId, ...planIds].sort(),
    );
    assert.deepEqual(queues[incomingId]?.Properties?.RedrivePolicy, {
      deadLetterTargetArn: { 'Fn::GetAtt': [incomingDlqId, 'Arn'] },
      maxReceiveCount: CLASSIFY.maxReceiveCount,
    });
    assert.deepEqual(queues[bulkId]?.Properties?.RedrivePolicy, {
      deadLetterTargetArn: { 'Fn::GetAtt': [bulkDlqId, 'Arn'] },
      maxReceiveCount: GPU_WORKER.maxReceiveCount,
    });
  });

  it('encrypts every queue with SQS-managed keys', () => {
    for (const [id, queue] of Object.entries(queues)) {
      assert.equal(queue.Properties.SqsManagedSseEnabled, true, `${id} has SSE`);
    }
  });

  it('denies non-SSL access to every queue', () => {
    const policies = Object.values(resourcesOf(template, 'AWS::SQS::QueuePolicy'));
    for (const id of Object.keys(queues)) {
      const sslOnly = policies.some(
        (policy) =>
          (policy.Properties.Queues as unknown[]).some((q) => referencedId(q) === id) &&
          (policy.Properties.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement.some(
            (s) =>
              s.Effect === 'Deny' &&
              JSON.stringify(s.Condition) === JSON.stringify({ Bool: { 'aws:SecureTransport': 'false' } }),
          ),
      );
      assert.ok(sslOnly, `${id} has an SSL-only policy`);
    }
  });
});

describe('buckets', () => {
  const buckets = resourcesOf(template, 'AWS::S3::Bucket');

  it('block all public access, encrypt, and abort incomplete uploads after a day', () => {
    assert.equal(Object.keys(buckets).length, 3);
    for (const [id, bucket] of Object.entries(buckets)) {
      assert.deepEqual(
        bucket.Properties.PublicAccessBlockConfiguration,
        {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        id,
      );
      assert.deepEqual(
        bucket.Properties.BucketEncryption,
        {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        id,
      );
      const rules = (bucket.Properties.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;
      assert.ok(
        rules.some((r) => JSON.stringify(r.AbortIncompleteMultipartUpload) === '{"DaysAfterInitiation":1}'),
        `${id} aborts incomplete multipart uploads`,
      );
    }
  });

  it('enforce SSL on every bucket', () => {
    const policies = Object.values(resourcesOf(template, 'AWS::S3::BucketPolicy'));
    for (const id of Object.keys(buckets)) {
      const sslOnly = policies.some(
        (policy) =>
          referencedId(policy.Properties.Bucket) === id &&
          (policy.Properties.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement.some(
            (s) =>
              s.Effect === 'Deny' &&
              JSON.stringify(s.Condition) === JSON.stringify({ Bool: { 'aws:SecureTransport': 'false' } }),
          ),
      );
      assert.ok(sslOnly, `${id} denies non-SSL requests`);
    }
  });

  it('log access to the images and results buckets', () => {
    const logsId = idOf(stack.storage.accessLogsBucket);
    for (const bucket of [stack.storage.imagesBucket, stack.storage.resultsBucket]) {
      const logging = buckets[idOf(bucket)]?.Properties?.LoggingConfiguration as Record<string, unknown>;
      assert.equal(referencedId(logging.DestinationBucketName), logsId);
    }
  });

  it('sends ObjectCreated events under the upload prefix to the incoming queue', () => {
    const filterRules = [{ Name: 'prefix', Value: UPLOAD_FILTER.prefix }];
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: { Ref: idOf(stack.storage.imagesBucket) },
      NotificationConfiguration: {
        QueueConfigurations: [
          {
            Events: ['s3:ObjectCreated:*'],
            QueueArn: { 'Fn::GetAtt': [incomingId, 'Arn'] },
            Filter: { Key: { FilterRules: filterRules } },
          },
        ],
      },
    });
  });
});

describe('tables', () => {
  it('results table: exact key schema and GSIs from RESULTS_TABLE, on-demand, PITR', () => {
    const { partitionKey, sortKey, labelIndex, rank2Index } = RESULTS_TABLE;
    const attributes = new Set([
      partitionKey,
      sortKey,
      labelIndex.partitionKey,
      labelIndex.sortKey,
      rank2Index.partitionKey,
      rank2Index.sortKey,
    ]);
    const table = resourcesOf(template, 'AWS::DynamoDB::Table')[idOf(stack.storage.resultsTable)];
    const p = table?.Properties ?? {};
    assert.deepEqual(p.KeySchema, [
      { AttributeName: partitionKey, KeyType: 'HASH' },
      { AttributeName: sortKey, KeyType: 'RANGE' },
    ]);
    assert.deepEqual(
      p.AttributeDefinitions,
      [...attributes].map((name) => ({ AttributeName: name, AttributeType: 'S' })),
    );
    assert.deepEqual(
      (p.GlobalSecondaryIndexes as { IndexName: string; KeySchema: unknown }[]).map((i) => [
        i.IndexName,
        i.KeySchema,
      ]),
      [labelIndex, rank2Index].map((i) => [
        i.name,
        [
          { AttributeName: i.partitionKey, KeyType: 'HASH' },
          { AttributeName: i.sortKey, KeyType: 'RANGE' },
        ],
      ]),
    );
    // The rank-2 index holds only what a label query returns (decision 0027): its writes cost a unit.
    const projections = (p.GlobalSecondaryIndexes as { Projection: unknown }[]).map((i) => i.Projection);
    assert.deepEqual(projections, [
      { ProjectionType: 'ALL' },
      { ProjectionType: 'INCLUDE', NonKeyAttributes: [...rank2Index.projection] },
    ]);
    assert.equal(p.BillingMode, 'PAY_PER_REQUEST');
    assert.deepEqual(p.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
  });

  it('jobs table: key from JOBS_TABLE, on-demand, PITR', () => {
    const p = resourcesOf(template, 'AWS::DynamoDB::Table')[idOf(stack.storage.jobsTable)]?.Properties ?? {};
    const { partitionKey, sortKey, listIndex } = JOBS_TABLE;
    assert.deepEqual(p.KeySchema, [
      { AttributeName: partitionKey, KeyType: 'HASH' },
      { AttributeName: sortKey, KeyType: 'RANGE' },
    ]);
    assert.deepEqual(
      p.AttributeDefinitions,
      [partitionKey, sortKey, listIndex.partitionKey, listIndex.sortKey].map((name) => ({
        AttributeName: name,
        AttributeType: 'S',
      })),
    );
    assert.deepEqual(
      (p.GlobalSecondaryIndexes as { IndexName: string; KeySchema: unknown }[]).map((i) => [
        i.IndexName,
        i.KeySchema,
      ]),
      [
        [
          listIndex.name,
          [
            { AttributeName: listIndex.partitionKey, KeyType: 'HASH' },
            { AttributeName: listIndex.sortKey, KeyType: 'RANGE' },
          ],
        ],
      ],
    );
    assert.equal(p.BillingMode, 'PAY_PER_REQUEST');
    assert.deepEqual(p.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
  });

  it('retains the data (buckets and tables) when the stack is deleted', () => {
    for (const type of ['AWS::S3::Bucket', 'AWS::DynamoDB::Table']) {
      for (const [id, r] of Object.entries(template.findResources(type))) {
        assert.equal((r as { DeletionPolicy?: string }).DeletionPolicy, 'Retain', id);
      }
    }
  });
});

describe('functions', () => {
  it('run the shared image on x86_64 with one CMD per handler', () => {
    const functions = [stack.classify.function, stack.jobScheduler.function, stack.queryApi.function];
    const handlers = [HANDLERS.classify, HANDLERS.planJob, HANDLERS.query];
    const all = resourcesOf(template, 'AWS::Lambda::Function');
    const images = new Set<string>();
    functions.forEach((fn, i) => {
      const p = all[idOf(fn)]?.Properties ?? {};
      assert.equal(p.PackageType, 'Image');
      assert.deepEqual(p.Architectures, ['x86_64']);
      assert.deepEqual(p.ImageConfig, { Command: [handlers[i]] });
      images.add(JSON.stringify(p.Code));
    });
    assert.equal(images.size, 1, 'one image serves all functions');
  });

  it('give classify its configuration through the environment', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      ImageConfig: { Command: [HANDLERS.classify] },
      Environment: {
        Variables: Match.objectLike({
          RESULTS_TABLE: { Ref: idOf(stack.storage.resultsTable) },
          RESULTS_BUCKET: { Ref: idOf(stack.storage.resultsBucket) },
          MODEL_DIR: '/opt/model',
          LOG_LEVEL: 'INFO',
          POWERTOOLS_SERVICE_NAME: 'labeler-classify',
          ORT_DISABLE_TELEMETRY: '1',
          INTRA_OP_THREADS: Match.stringLikeRegexp('^[1-9][0-9]*$'),
        }),
      },
    });
  });
});

describe('least privilege', () => {
  const dataPrefixes = ['s3:', 'dynamodb:', 'sqs:'];

  function actionsOf(roleId: string): string[] {
    return [...new Set(statementsOfRole(template, roleId).flatMap((s) => s.Action))].sort();
  }
  function assertNoWildcardOnData(roleId: string): void {
    for (const s of statementsOfRole(template, roleId)) {
      for (const action of s.Action) assert.ok(!action.includes('*'), `${roleId}: ${action}`);
      if (s.Action.some((a) => dataPrefixes.some((p) => a.startsWith(p)))) {
        assert.ok(!s.Resource.includes('*'), `${roleId}: data actions on every resource`);
      }
    }
  }

  it('classify may read images, write results, count job images, consume incoming, start a recount, log', () => {
    const role = functionRoleId(stack.classify.function);
    assertNoWildcardOnData(role);
    assert.deepEqual(actionsOf(role), [
      'dynamodb:BatchGetItem',
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      's3:GetObject',
      's3:PutObject',
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
      'sqs:SendMessage',
    ]);
    const statements = statementsOfRole(template, role);
    // The one queue it sends to: the plan queue, a big job's finishing recount (decision 0027).
    const sends = statements.filter((s) => s.Action.includes('sqs:SendMessage'));
    assert.deepEqual(
      sends.map((s) => s.Resource),
      [[{ 'Fn::GetAtt': [idOf(stack.queues.plan.queue), 'Arn'] }]],
      'the plan queue only',
    );
    const reads = statements.filter((s) => s.Action.includes('s3:GetObject'));
    // Jobs label any prefix of the images bucket (datasets/x/y.jpg), not only uploads under images/.
    assert.deepEqual(
      reads.map((s) => s.Resource),
      [[{ 'Fn::Join': ['', [{ 'Fn::GetAtt': [idOf(stack.storage.imagesBucket), 'Arn'] }, '/*']] }]],
      'the images bucket, any key, read-only',
    );
    const resources = JSON.stringify(statements.flatMap((s) => s.Resource));
    assert.ok(resources.includes(`/${RESULTS_PREFIX}/*`), 'results writable under the results prefix only');
  });

  it('query is read-only on the tables', () => {
    const role = functionRoleId(stack.queryApi.function);
    assertNoWildcardOnData(role);
    assert.deepEqual(actionsOf(role), [
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:Query',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
    ]);
  });

  it('plan-job may list images, consume and send plan steps, enqueue images and write jobs', () => {
    const role = functionRoleId(stack.jobScheduler.function);
    assertNoWildcardOnData(role);
    assert.deepEqual(actionsOf(role), [
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      's3:ListBucket',
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
      'sqs:SendMessage',
    ]);
  });

  it('the GPU task role consumes bulk, writes results and counts job images, nothing else', () => {
    const taskDefinition = resourcesOf(template, 'AWS::ECS::TaskDefinition')[
      idOf(stack.gpuWorkers?.taskDefinition as IConstruct)
    ];
    const role = referencedId(taskDefinition?.Properties?.TaskRoleArn);
    assert.ok(role);
    assertNoWildcardOnData(role);
    assert.deepEqual(actionsOf(role), [
      'dynamodb:BatchGetItem',
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
      's3:GetObject',
      's3:PutObject',
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
    ]);
  });

  it('Scheduler may send to the plan queue and its dead-letter queue, nothing else', () => {
    const roleId = idOf(stack.jobScheduler.schedulerRole);
    const role = resourcesOf(template, 'AWS::IAM::Role')[roleId];
    assert.match(JSON.stringify(role?.Properties?.AssumeRolePolicyDocument), /scheduler\.amazonaws\.com/);
    assert.deepEqual(statementsOfRole(template, roleId), [
      {
        Effect: 'Allow',
        Action: ['sqs:SendMessage'],
        Resource: [
          { 'Fn::GetAtt': [idOf(stack.queues.plan.deadLetterQueue), 'Arn'] },
          { 'Fn::GetAtt': [idOf(stack.queues.plan.queue), 'Arn'] },
        ],
      },
    ]);
    template.resourceCountIs('AWS::Scheduler::ScheduleGroup', 1);
  });
});

describe('query API', () => {
  it('requires IAM auth on every route', () => {
    const routes = Object.values(resourcesOf(template, 'AWS::ApiGatewayV2::Route'));
    assert.ok(routes.length > 0);
    for (const route of routes) assert.equal(route.Properties.AuthorizationType, 'AWS_IAM');
  });
});

describe('GPU workers', () => {
  const gpu = stack.gpuWorkers;
  assert.ok(gpu, 'the default stack has GPU workers');

  it('run a task that asks for one GPU, from the gpu image target', () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          ResourceRequirements: [{ Type: 'GPU', Value: '1' }],
          Environment: Match.arrayWith([{ Name: 'BULK_QUEUE_URL', Value: { Ref: bulkId } }]),
        }),
      ],
    });
  });

  it('run on GPU-optimised ECS instances of the configured types, from zero', () => {
    template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      MixedInstancesPolicy: Match.objectLike({
        LaunchTemplate: Match.objectLike({
          Overrides: GPU_WORKER.instanceTypes.map((InstanceType) => ({ InstanceType })),
        }),
      }),
    });
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({
        ImageId: { Ref: Match.stringLikeRegexp('amazonlinux2023gpu') },
        MetadataOptions: Match.objectLike({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 }),
        // The one volume, encrypted (cdk-nag's EC26 cannot see it through the mixed instances policy).
        BlockDeviceMappings: [Match.objectLike({ Ebs: Match.objectLike({ Encrypted: true }) })],
      }),
    });
    template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      MinSize: '0',
      MaxSize: String(GPU_WORKER.maxTasks),
    });
    template.hasResourceProperties('AWS::ECS::CapacityProvider', {
      AutoScalingGroupProvider: Match.objectLike({ ManagedScaling: Match.objectLike({ Status: 'ENABLED' }) }),
    });
  });

  it('scales tasks between zero and maxTasks on the bulk queue depth', () => {
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
      MinCapacity: 0,
      MaxCapacity: GPU_WORKER.maxTasks,
      ScalableDimension: 'ecs:service:DesiredCount',
    });
    const policiesById = resourcesOf(template, 'AWS::ApplicationAutoScaling::ScalingPolicy');
    const stepPolicies = Object.values(policiesById);
    assert.ok(stepPolicies.length >= 2);
    for (const p of stepPolicies) assert.equal(p.Properties.PolicyType, 'StepScaling');
    const scaleIn = stepPolicies.find((p) =>
      JSON.stringify(p.Properties.StepScalingPolicyConfiguration).includes('"ScalingAdjustment":0'),
    );
    assert.ok(scaleIn, 'a step sets the task count to 0 when the queue is drained');

    const alarms = Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm'));
    const scalingAlarms = alarms.filter((a) =>
      ((a.Properties.AlarmActions ?? []) as unknown[]).some((action) => {
        const id = referencedId(action);
        return id !== undefined && id in policiesById;
      }),
    );
    assert.equal(scalingAlarms.length, stepPolicies.length, 'every scaling policy is driven by an alarm');
    for (const alarm of scalingAlarms) {
      const metrics = JSON.stringify(alarm.Properties.Metrics);
      assert.ok(metrics.includes('ApproximateNumberOfMessagesVisible'), 'scales on visible messages');
      assert.ok(metrics.includes(`"Fn::GetAtt":["${bulkId}","QueueName"]`), 'of the bulk queue');
    }
  });

  it('has no CPU-based scaling that could stop a task mid-batch (aws-cdk#20706)', () => {
    const policies = Object.values(resourcesOf(template, 'AWS::ApplicationAutoScaling::ScalingPolicy'));
    assert.ok(policies.every((p) => p.Properties.PolicyType !== 'TargetTrackingScaling'));
    assert.ok(!JSON.stringify(template.toJSON()).includes('ECSServiceAverageCPUUtilization'));
  });

  it('uses no NAT gateway', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
  });
});

describe('monitoring', () => {
  const alarms = Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm'));
  function alarmOn(metricName: string, dimension: unknown): boolean {
    return alarms.some(
      (a) =>
        a.Properties.MetricName === metricName &&
        JSON.stringify(a.Properties.Dimensions).includes(JSON.stringify(dimension)),
    );
  }

  it('alarms on any message in each dead-letter queue', () => {
    for (const dlq of [incomingDlqId, jobsDlqId, bulkDlqId]) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlq, 'QueueName'] } }],
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
      });
    }
  });

  it('alarms on the age of the oldest incoming message and on classify errors', () => {
    assert.ok(alarmOn('ApproximateAgeOfOldestMessage', { 'Fn::GetAtt': [incomingId, 'QueueName'] }));
    assert.ok(alarmOn('Errors', { Ref: idOf(stack.classify.function) }));
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });
});

describe('cdk-nag', () => {
  it('reports no unacknowledged finding (synthesis would have thrown)', () => {
    // synthesizeLabeler() runs AwsSolutionsChecks as a validation plugin; reaching here means it passed.
    assert.ok(synth.assembly.getStackArtifact(stack.artifactId).template);
  });

  it('gives every acknowledgement a written reason', () => {
    const nag = synth.acknowledgements.filter((ack) => ack.id.includes('AwsSolutions-'));
    assert.ok(nag.length > 0);
    for (const ack of nag) {
      assert.ok(ack.reason.trim().length >= 40, `${ack.path} ${ack.id}: reason too short`);
    }
  });
});

describe('container image assets', () => {
  const manifest = JSON.parse(
    readFileSync(join(synth.assembly.directory, `${stack.artifactId}.assets.json`), 'utf8'),
  ) as { dockerImages: Record<string, { source: { directory: string; dockerBuildTarget: string } }> };
  const images = Object.values(manifest.dockerImages).map((i) => i.source);

  function walk(dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory()
        ? [`${entry.name}/`, ...walk(join(dir, entry.name)).map((p) => `${entry.name}/${p}`)]
        : [entry.name],
    );
  }

  it('builds two targets of functions/Dockerfile: lambda and gpu', () => {
    assert.deepEqual(images.map((i) => i.dockerBuildTarget).sort(), ['gpu', 'lambda']);
  });

  it('stages only what the Dockerfile copies (no node_modules, cdk.out, .git, caches)', () => {
    const allowedTop = new Set([
      '.dockerignore',
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'shared/',
      'functions/',
      'models/',
    ]);
    for (const image of images) {
      const dir = join(synth.assembly.directory, image.directory);
      const files = walk(dir);
      const top = files.filter((f) => !f.slice(0, -1).includes('/'));
      for (const entry of top)
        assert.ok(allowedTop.has(entry), `${image.dockerBuildTarget}: unexpected ${entry}`);
      assert.ok(files.includes('functions/Dockerfile'));
      assert.ok(
        files.some((f) => f.startsWith(`${DEFAULT_MODEL_DIR}/`)),
        'the model is in the context',
      );
      assert.ok(
        !files.some((f) => /(^|\/)(node_modules|\.git|cdk\.out)\//.test(f)),
        'no dependency or VCS folders',
      );
      assert.ok(
        !files.some(
          (f) => f.startsWith('models/') && !f.startsWith(`${DEFAULT_MODEL_DIR}/`) && f !== 'models/',
        ),
      );
      const bytes = files
        .filter((f) => !f.endsWith('/'))
        .reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
      assert.ok(bytes < 64 * 1024 * 1024, `${image.dockerBuildTarget} context is ${bytes} bytes`);
    }
  });
});
