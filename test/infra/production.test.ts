import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import {
  GPU_WORKER_SERVICE_NAME,
  gpuTaskSize,
  gpuTaskSizeForAll,
} from '../../infra/constructs/gpu-workers.ts';
import { GPU_WITHOUT_CUDA_METRIC, METRIC_NAMESPACE } from '../../infra/constructs/monitoring.ts';
import { createApp } from '../../infra/create-app.ts';
import { cudaProviderPinned } from '../../infra/image.ts';
import {
  ALARMS,
  CLASSIFY,
  GPU_INSTANCE_SIZES,
  GPU_WORKER,
  JOBS_TABLE,
  lambdaVcpus,
  RESULTS_TABLE,
} from '../../shared/settings.ts';
import { type Resource, referencedId, resourcesOf, synthesizeLabeler } from './support.ts';

// Arrange, once: the production shape (alarm e-mail, service-linked role, cdk-nag on) and
// the default shape on another instance type (cdk-nag off; only its template is read).
const EMAIL = 'ops@example.com';
const prod = synthesizeLabeler({ alarmEmail: EMAIL, createEcsServiceLinkedRole: true });
const { stack, template } = prod;

const otherOutdir = mkdtempSync(join(tmpdir(), 'labeler-cdk-other-'));
const other = createApp({ outdir: otherOutdir, nag: false, context: { gpuInstanceType: 'g6e.2xlarge' } });
const otherAssembly = other.app.synth();
const otherTemplate = Template.fromJSON(otherAssembly.getStackArtifact(other.stack.artifactId).template);
after(() => {
  prod.cleanup();
  rmSync(otherOutdir, { recursive: true, force: true });
});

function idOf(construct: IConstruct): string {
  return Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
}
const topicId = idOf(stack.monitoring.topic);
const alarms = resourcesOf(template, 'AWS::CloudWatch::Alarm');
const scalingPolicies = resourcesOf(template, 'AWS::ApplicationAutoScaling::ScalingPolicy');
/** Alarms a person must hear about: all but the ones driving GPU step scaling. */
const operatorAlarms = Object.entries(alarms).filter(
  ([, a]) =>
    !((a.Properties.AlarmActions ?? []) as unknown[]).some((action) => {
      const id = referencedId(action);
      return id !== undefined && id in scalingPolicies;
    }),
);
function alarmsOn(metricName: string, dimensions: Record<string, unknown>): [string, Resource][] {
  const wanted = Object.entries(dimensions).map(([Name, Value]) => JSON.stringify({ Name, Value }));
  return operatorAlarms.filter(([, a]) => {
    const props = JSON.stringify(a.Properties);
    return props.includes(`"MetricName":"${metricName}"`) && wanted.every((w) => props.includes(w));
  });
}

describe('alarms reach a person', () => {
  it('every operator alarm notifies the alarm topic, on alarm and on recovery', () => {
    // 4 dead-letter queues, 3 queue ages (not the jobs queue: a long job is not a stuck one),
    // 2 queues without progress (bulk, jobs), 2 function errors, 3 function throttles,
    // 5 table/index throttles (results, by-label, by-label-2, jobs, by-created), 1 GPU without
    // CUDA, 2 GPU fleet short (tasks, instances), 1 failed-image share.
    assert.equal(operatorAlarms.length, 23);
    for (const [id, alarm] of operatorAlarms) {
      assert.deepEqual(alarm.Properties.AlarmActions, [{ Ref: topicId }], id);
      assert.deepEqual(alarm.Properties.OKActions, [{ Ref: topicId }], id);
    }
  });

  it('subscribes the alarmEmail context value to the topic', () => {
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: EMAIL,
      TopicArn: { Ref: topicId },
    });
  });

  it('encrypts the topic with a rotated key whose policy lets CloudWatch publish', () => {
    const topic = resourcesOf(template, 'AWS::SNS::Topic')[topicId];
    const keyId = referencedId(topic?.Properties.KmsMasterKeyId);
    assert.ok(keyId, 'the topic names a key of this stack');
    const key = resourcesOf(template, 'AWS::KMS::Key')[keyId];
    assert.equal(key?.Properties.EnableKeyRotation, true);
    assert.ok(key);
    const statements = (key.Properties.KeyPolicy as { Statement: Record<string, unknown>[] }).Statement;
    assert.ok(
      statements.some(
        (s) =>
          JSON.stringify(s.Principal) === JSON.stringify({ Service: 'cloudwatch.amazonaws.com' }) &&
          JSON.stringify(s.Action).includes('kms:GenerateDataKey'),
      ),
    );
  });

  it('warns at synthesis when no alarm e-mail is given, and still creates the topic', () => {
    const warnings = Annotations.fromStack(other.stack).findWarning(
      '*',
      Match.stringLikeRegexp('No alarm e-mail'),
    );
    assert.equal(warnings.length, 1);
    otherTemplate.resourceCountIs('AWS::SNS::Topic', 1);
    otherTemplate.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('warns at synthesis, with GPU workers, while the CUDA provider digest is a placeholder', () => {
    const warnings = Annotations.fromStack(other.stack).findWarning(
      '*',
      Match.stringLikeRegexp('cuda-provider.sha256 holds a placeholder'),
    );
    // The committed file decides: a real digest silences it.
    assert.equal(warnings.length, cudaProviderPinned() ? 0 : 1);
    assert.equal(other.stack.gpuWorkers !== undefined, true, 'this synthesis has GPU workers');
  });

  it('alarms on the age of the oldest message of both queues', () => {
    for (const q of [stack.queues.incoming.queue, stack.queues.bulk.queue]) {
      const found = alarmsOn('ApproximateAgeOfOldestMessage', {
        QueueName: { 'Fn::GetAtt': [idOf(q), 'QueueName'] },
      });
      assert.equal(found.length, 1, q.node.path);
    }
  });

  it('alarms on classify and plan-job errors, and on throttles of every function', () => {
    const functions = [stack.classify.function, stack.jobScheduler.function, stack.queryApi.function];
    for (const fn of functions.slice(0, 2)) {
      assert.equal(alarmsOn('Errors', { FunctionName: { Ref: idOf(fn) } }).length, 1, fn.node.path);
    }
    for (const fn of functions) {
      assert.equal(alarmsOn('Throttles', { FunctionName: { Ref: idOf(fn) } }).length, 1, fn.node.path);
    }
  });

  it('alarms on throttled reads and writes of each table and of every index', () => {
    const results = { Ref: idOf(stack.storage.resultsTable) };
    const jobs = { Ref: idOf(stack.storage.jobsTable) };
    const targets: Record<string, unknown>[] = [
      { TableName: results },
      { TableName: results, GlobalSecondaryIndexName: RESULTS_TABLE.labelIndex.name },
      { TableName: results, GlobalSecondaryIndexName: RESULTS_TABLE.rank2Index.name },
      { TableName: jobs },
      { TableName: jobs, GlobalSecondaryIndexName: JOBS_TABLE.listIndex.name },
    ];
    const throttleAlarms = operatorAlarms.filter(([, a]) =>
      JSON.stringify(a.Properties).includes('"MetricName":"WriteThrottleEvents"'),
    );
    assert.equal(throttleAlarms.length, targets.length);
    for (const dims of targets) {
      for (const metric of ['ReadThrottleEvents', 'WriteThrottleEvents']) {
        const matching = alarmsOn(metric, dims).filter(
          ([, a]) =>
            // The base-table alarm must not be an index alarm.
            'GlobalSecondaryIndexName' in dims ||
            !JSON.stringify(a.Properties).includes('GlobalSecondaryIndexName'),
        );
        assert.equal(matching.length, 1, `${metric} ${JSON.stringify(dims)}`);
      }
    }
  });

  it('alarms when a GPU worker starts without CUDA, from its log lines', () => {
    const filters = Object.values(resourcesOf(template, 'AWS::Logs::MetricFilter'));
    assert.equal(filters.length, 1);
    const filter = filters[0] as Resource;
    assert.equal(
      referencedId(filter.Properties.LogGroupName),
      idOf(stack.gpuWorkers?.logGroup as IConstruct),
    );
    const pattern = String(filter.Properties.FilterPattern);
    // The two log lines functions/gpu-worker/main.ts writes (test/unit/gpu-worker-startup.test.ts).
    assert.match(pattern, /\$\.code = "model\/provider-unavailable"/);
    assert.match(pattern, /\$\.executionProvider = "cpu"/);
    assert.match(pattern, /\|\|/);
    assert.deepEqual(
      (filter.Properties.MetricTransformations as Record<string, unknown>[]).map((t) => [
        t.MetricNamespace,
        t.MetricName,
      ]),
      [[METRIC_NAMESPACE, GPU_WITHOUT_CUDA_METRIC]],
    );
    assert.equal(alarmsOn(GPU_WITHOUT_CUDA_METRIC, {}).length, 1);
  });
});

describe('the GPU fleet and the work are watched', () => {
  const alarmNamed = (id: string): Resource => {
    const found = operatorAlarms.filter(([, a]) => a.Properties.AlarmName === `${stack.stackName}-${id}`);
    assert.equal(found.length, 1, id);
    return (found[0] as [string, Resource])[1];
  };
  const metricsOf = (alarm: Resource) =>
    (alarm.Properties.Metrics as {
      Id: string;
      Expression?: string;
      MetricStat?: Record<string, unknown>;
    }[]) ?? [];
  const stat = (alarm: Resource, name: string) =>
    metricsOf(alarm).find(
      (m) => (m.MetricStat?.Metric as { MetricName?: string } | undefined)?.MetricName === name,
    )?.MetricStat;

  it('alarms when the bulk queue holds work and nothing is deleted for the configured time', () => {
    const alarm = alarmNamed('BulkNoProgress');
    const bulk = { 'Fn::GetAtt': [idOf(stack.queues.bulk.queue), 'QueueName'] };
    for (const name of [
      'ApproximateNumberOfMessagesVisible',
      'ApproximateNumberOfMessagesNotVisible',
      'NumberOfMessagesDeleted',
    ]) {
      const s = stat(alarm, name);
      assert.ok(s, name);
      assert.deepEqual((s.Metric as { Dimensions: unknown[] }).Dimensions, [
        { Name: 'QueueName', Value: bulk },
      ]);
    }
    assert.equal(stat(alarm, 'NumberOfMessagesDeleted')?.Stat, 'Sum');
    const expression = metricsOf(alarm).find((m) => m.Expression)?.Expression ?? '';
    assert.match(expression, /\(visible \+ inFlight\) > 0 AND FILL\(deleted, 0\) == 0/);
    // Every 5-minute period of the window must show no progress.
    assert.equal(alarm.Properties.EvaluationPeriods, ALARMS.bulkNoProgressMinutes / 5);
    assert.equal(alarm.Properties.DatapointsToAlarm, ALARMS.bulkNoProgressMinutes / 5);
    // The incoming queue drains on Lambda within seconds; only the queues asked for get one.
    assert.deepEqual(
      operatorAlarms
        .map(([, a]) => JSON.stringify(a.Properties.AlarmName))
        .filter((n) => n.includes('NoProgress'))
        .map((n) => /(\w+NoProgress)/.exec(n)?.[1])
        .sort(),
      ['BulkNoProgress', 'JobsNoProgress'],
    );
  });

  it('watches the jobs queue for a job without progress, never for a long one', () => {
    const alarm = alarmNamed('JobsNoProgress');
    const jobs = { 'Fn::GetAtt': [idOf(stack.queues.jobs.queue), 'QueueName'] };
    const deleted = stat(alarm, 'NumberOfMessagesDeleted');
    assert.ok(deleted);
    assert.deepEqual((deleted.Metric as { Dimensions: unknown[] }).Dimensions, [
      { Name: 'QueueName', Value: jobs },
    ]);
    assert.equal(alarm.Properties.EvaluationPeriods, ALARMS.jobsNoProgressMinutes / 5);
    // No age alarm: a ten-million-image job's oldest message may wait for hours.
    assert.deepEqual(alarmsOn('ApproximateAgeOfOldestMessage', { QueueName: jobs }), []);
  });

  it('alarms when the GPU service runs fewer tasks than desired, from Container Insights', () => {
    const [cluster] = Object.values(resourcesOf(template, 'AWS::ECS::Cluster'));
    assert.deepEqual(cluster?.Properties.ClusterSettings, [{ Name: 'containerInsights', Value: 'enabled' }]);
    const alarm = alarmNamed('GpuTasksBelowDesired');
    const running = stat(alarm, 'RunningTaskCount');
    const desired = stat(alarm, 'DesiredTaskCount');
    assert.ok(running && desired);
    assert.equal((running.Metric as { Namespace: string }).Namespace, 'ECS/ContainerInsights');
    assert.equal(running?.Stat, 'Maximum');
    assert.equal(desired?.Stat, 'Minimum');
    assert.equal(alarm.Properties.EvaluationPeriods, ALARMS.gpuTasksShortMinutes / 5);
    assert.equal(alarm.Properties.Threshold, 1);
  });

  it('collects the GPU group metrics and alarms when instances stay short of desired (failed launches)', () => {
    const [asg] = Object.values(resourcesOf(template, 'AWS::AutoScaling::AutoScalingGroup'));
    assert.ok(asg);
    const collected = (asg.Properties.MetricsCollection as { Metrics: string[] }[])[0]?.Metrics ?? [];
    assert.deepEqual([...collected].sort(), ['GroupDesiredCapacity', 'GroupInServiceInstances']);
    const alarm = alarmNamed('GpuInstancesBelowDesired');
    assert.equal(stat(alarm, 'GroupDesiredCapacity')?.Stat, 'Minimum');
    assert.equal(stat(alarm, 'GroupInServiceInstances')?.Stat, 'Maximum');
    assert.equal(alarm.Properties.EvaluationPeriods, ALARMS.gpuInstancesShortMinutes / 5);
  });

  it('alarms on the share of failed images across every labeling service', () => {
    const alarm = alarmNamed('ImagesFailedShare');
    const services = new Set<string>();
    for (const m of metricsOf(alarm)) {
      const metric = m.MetricStat?.Metric as
        | { Namespace: string; MetricName: string; Dimensions: { Value: string }[] }
        | undefined;
      if (!metric) continue;
      assert.equal(metric.Namespace, METRIC_NAMESPACE);
      assert.ok(['ImagesFailed', 'ImagesLabeled'].includes(metric.MetricName));
      services.add(metric.Dimensions[0]?.Value ?? '');
    }
    assert.deepEqual(
      [...services].sort(),
      [GPU_WORKER_SERVICE_NAME, stack.classify.function.serviceName].sort(),
    );
    assert.equal(alarm.Properties.Threshold, ALARMS.failedImagesShare);
    assert.equal(alarm.Properties.ComparisonOperator, 'GreaterThanThreshold');
    const expression = metricsOf(alarm).find((m) => m.Expression)?.Expression ?? '';
    assert.match(expression, new RegExp(`>= ${ALARMS.failedImagesMinCount},`));
  });
});

describe('GPU workers fit their instance', () => {
  function container(t: Template): Record<string, unknown> {
    const defs = Object.values(resourcesOf(t, 'AWS::ECS::TaskDefinition'));
    assert.equal(defs.length, 1);
    return ((defs[0] as Resource).Properties.ContainerDefinitions as Record<string, unknown>[])[0] as Record<
      string,
      unknown
    >;
  }
  function env(c: Record<string, unknown>): Record<string, unknown> {
    return Object.fromEntries(
      (c.Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]),
    );
  }

  it('derives CPU, memory and decode threads from the instance type, less the host share', () => {
    assert.deepEqual(gpuTaskSize('g5.xlarge'), { vcpus: 4, cpu: 3072, memoryReservationMiB: 12 * 1024 });
    for (const [t, types] of [
      [template, GPU_WORKER.instanceTypes],
      [otherTemplate, ['g6e.2xlarge']],
    ] as const) {
      const size = gpuTaskSizeForAll(types);
      const c = container(t);
      assert.equal(c.Cpu, size.cpu, types.join());
      assert.equal(c.MemoryReservation, size.memoryReservationMiB, types.join());
      assert.equal(env(c).UV_THREADPOOL_SIZE, String(size.vcpus), types.join());
      assert.equal(env(c).DECODE_CONCURRENCY, String(size.vcpus), types.join());
      t.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
        MixedInstancesPolicy: Match.objectLike({
          LaunchTemplate: Match.objectLike({ Overrides: types.map((InstanceType) => ({ InstanceType })) }),
        }),
      });
    }
    assert.equal(gpuTaskSize('g6e.2xlarge').memoryReservationMiB, 60 * 1024);
  });

  it('refuses an instance type whose size it does not know', () => {
    assert.throws(() => gpuTaskSize('p5.48xlarge'), /no known size/);
    assert.ok(Object.keys(GPU_INSTANCE_SIZES).every((type) => /^g\d/.test(type)));
  });

  it('run on the Amazon Linux 2023 ECS GPU AMI', () => {
    for (const t of [template, otherTemplate]) {
      const lt = Object.values(resourcesOf(t, 'AWS::EC2::LaunchTemplate'))[0];
      const imageRef = String(
        referencedId(((lt as Resource).Properties.LaunchTemplateData as { ImageId: unknown }).ImageId),
      );
      assert.match(imageRef, /amazonlinux2023gpurecommended/);
      assert.ok(!/amazonlinux2gpu/.test(imageRef));
    }
  });

  it('refuse CPU fallback unless asked', () => {
    assert.equal(env(container(template)).ALLOW_CPU_FALLBACK, 'false');
    assert.equal(env(container(template)).EXECUTION_PROVIDERS, 'cuda');
  });

  it('size the Lambda decode pool from the memory size', () => {
    const classify = resourcesOf(template, 'AWS::Lambda::Function')[idOf(stack.classify.function)];
    const vars = ((classify as Resource).Properties.Environment as { Variables: Record<string, string> })
      .Variables;
    assert.equal(vars.UV_THREADPOOL_SIZE, String(lambdaVcpus(CLASSIFY.memoryMb)));
    assert.equal(lambdaVcpus(1769), 1);
    assert.equal(lambdaVcpus(2048), 2);
    assert.equal(lambdaVcpus(10240), 6);
  });
});

describe('fresh accounts', () => {
  it('creates the ECS service-linked role when asked, before the capacity provider and cluster', () => {
    const roles = Object.entries(template.findResources('AWS::IAM::ServiceLinkedRole'));
    assert.equal(roles.length, 1);
    const [roleId, role] = roles[0] as [string, { Properties: { AWSServiceName: string } }];
    assert.equal(role.Properties.AWSServiceName, 'ecs.amazonaws.com');
    for (const type of ['AWS::ECS::CapacityProvider', 'AWS::ECS::Cluster']) {
      const [resource] = Object.values(template.findResources(type)) as { DependsOn?: string[] }[];
      assert.ok(resource?.DependsOn?.includes(roleId), `${type} waits for the role`);
    }
  });

  it('leaves the role alone by default (an account that used ECS already has it)', () => {
    otherTemplate.resourceCountIs('AWS::IAM::ServiceLinkedRole', 0);
  });
});

describe('retries and data safety', () => {
  it('lets transient failures use at least five receives before the dead-letter queue', () => {
    assert.ok(CLASSIFY.maxReceiveCount >= 5);
    assert.ok(GPU_WORKER.maxReceiveCount >= 5);
    for (const q of [stack.queues.incoming.queue, stack.queues.bulk.queue]) {
      const redrive = resourcesOf(template, 'AWS::SQS::Queue')[idOf(q)]?.Properties.RedrivePolicy as {
        maxReceiveCount: number;
      };
      assert.ok(redrive.maxReceiveCount >= 5, q.node.path);
    }
  });

  it('turns on deletion protection for both tables', () => {
    for (const table of [stack.storage.resultsTable, stack.storage.jobsTable]) {
      const p = resourcesOf(template, 'AWS::DynamoDB::Table')[idOf(table)]?.Properties;
      assert.equal(p?.DeletionProtectionEnabled, true, table.node.path);
    }
  });

  it('versions the images bucket and expires replaced versions; tiers results without versioning', () => {
    const buckets = resourcesOf(template, 'AWS::S3::Bucket');
    const images = buckets[idOf(stack.storage.imagesBucket)]?.Properties ?? {};
    assert.deepEqual(images.VersioningConfiguration, { Status: 'Enabled' });
    const imageRules = (images.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;
    assert.ok(
      imageRules.some(
        (r) => JSON.stringify(r.NoncurrentVersionExpiration) === JSON.stringify({ NoncurrentDays: 30 }),
      ),
    );
    const results = buckets[idOf(stack.storage.resultsBucket)]?.Properties ?? {};
    assert.equal(results.VersioningConfiguration, undefined);
    const resultRules = (results.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;
    assert.ok(
      resultRules.some((r) =>
        String(JSON.stringify(r.Transitions)).includes('"StorageClass":"INTELLIGENT_TIERING"'),
      ),
    );
  });
});
