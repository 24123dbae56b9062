import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { scheduleContext } from '../../infra/create-app.ts';
import { SCHEDULE_DELIVERY, ScheduleError } from '../../shared/labeling/schedules.ts';
import { DRIFT, ENV, JOBS, RESULTS_TABLE } from '../../shared/settings.ts';
import { referencedId, resourcesOf, statementsOfRole, synthesizeLabeler } from './support.ts';

// Arrange, once for the file: the real app (cdk-nag included) with two schedules declared
// as cdk.json declares them, one of them without a bucket.
const synth = synthesizeLabeler({
  gpuWorkers: false,
  readableBuckets: ['other-bucket'],
  schedules: [
    {
      name: 'nightly-datasets',
      expression: 'cron(0 2 * * ? *)',
      timezone: 'Europe/Paris',
      prefix: 'datasets/',
      target: 'gpu',
      mode: 'stale',
    },
    {
      name: 'hourly-inbox',
      expression: 'rate(1 hour)',
      bucket: 'other-bucket',
      prefix: 'inbox/',
      target: 'lambda',
      mode: 'all',
    },
  ],
});
const { stack, template } = synth;
after(() => synth.cleanup());

function idOf(construct: IConstruct): string {
  return Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
}
const planId = idOf(stack.queues.plan.queue);
const planDlqId = idOf(stack.queues.plan.deadLetterQueue);
const planFunctionId = idOf(stack.jobScheduler.function);
const schedules = Object.values(resourcesOf(template, 'AWS::Scheduler::Schedule'));
const byName = (name: string) => schedules.find((s) => s.Properties.Name === name)?.Properties ?? {};

describe('plan queue and plan-job function', () => {
  it('parks a plan step in the plan dead-letter queue after JOBS.planMaxReceiveCount receives', () => {
    const queue = resourcesOf(template, 'AWS::SQS::Queue')[planId]?.Properties ?? {};
    assert.deepEqual(queue.RedrivePolicy, {
      deadLetterTargetArn: { 'Fn::GetAtt': [planDlqId, 'Arn'] },
      maxReceiveCount: JOBS.planMaxReceiveCount,
    });
    const timeout = resourcesOf(template, 'AWS::Lambda::Function')[planFunctionId]?.Properties.Timeout;
    assert.ok(Number(queue.VisibilityTimeout) >= 6 * Number(timeout), 'visibility >= 6x function timeout');
  });

  it('consumes the plan queue one step at a time, reporting item failures', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: planFunctionId },
      EventSourceArn: { 'Fn::GetAtt': [planId, 'Arn'] },
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('names the plan queue, the models with their queues and the jobs table to the function', () => {
    const env =
      (
        resourcesOf(template, 'AWS::Lambda::Function')[planFunctionId]?.Properties.Environment as
          | {
              Variables: Record<string, unknown>;
            }
          | undefined
      )?.Variables ?? {};
    assert.deepEqual(env[ENV.planQueueUrl], { Ref: planId });
    // The stack's models (one here) with their jobs queues; no bulk queue without GPU workers.
    const models = JSON.stringify(env[ENV.stackModels]);
    assert.ok(models.includes(JSON.stringify({ Ref: idOf(stack.queues.jobs.queue) })), models);
    assert.ok(!models.includes(idOf(stack.queues.incoming.queue)), 'job images never queue behind uploads');
    assert.ok(!models.includes('bulkQueueUrl'), models);
    assert.equal(env.JOBS_QUEUE_URL, undefined);
    assert.equal(env.INCOMING_QUEUE_URL, undefined);
    assert.deepEqual(env[ENV.jobsTable], { Ref: idOf(stack.storage.jobsTable) });
    // Planning never reads results (`stale` is decided by the workers): no name, no grant.
    assert.equal(env[ENV.resultsTable], undefined);
  });

  it('alarms on any message in the plan dead-letter queue', () => {
    const alarms = Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm')).filter(
      (a) =>
        a.Properties.MetricName === 'ApproximateNumberOfMessagesVisible' &&
        JSON.stringify(a.Properties.Dimensions).includes(planDlqId),
    );
    assert.equal(alarms.length, 1);
    assert.equal(alarms[0]?.Properties.Threshold, 0);
    assert.equal(alarms[0]?.Properties.ComparisonOperator, 'GreaterThanThreshold');
    assert.ok(
      (alarms[0]?.Properties.AlarmActions as unknown[] | undefined)?.length,
      'notifies the alarm topic',
    );
  });

  it('alarms per declared schedule on its LabelDrift above DRIFT.threshold, through the alarm topic', () => {
    const drift = Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm')).filter(
      (a) => a.Properties.MetricName === DRIFT.metricName,
    );
    assert.deepEqual(
      drift.map((a) => [a.Properties.AlarmName, a.Properties.Namespace, a.Properties.Dimensions]).sort(),
      [
        [
          `${stack.stackName}-LabelDriftHourlyInbox`,
          'Labeler',
          [{ Name: 'Schedule', Value: 'hourly-inbox' }],
        ],
        [
          `${stack.stackName}-LabelDriftNightlyDatasets`,
          'Labeler',
          [{ Name: 'Schedule', Value: 'nightly-datasets' }],
        ],
      ],
    );
    const topic = idOf(stack.monitoring.topic);
    for (const alarm of drift) {
      assert.equal(alarm.Properties.Threshold, DRIFT.threshold);
      assert.equal(alarm.Properties.ComparisonOperator, 'GreaterThanThreshold');
      assert.deepEqual(alarm.Properties.AlarmActions, [{ Ref: topic }]);
    }
  });

  it('has no by-job index on the results table', () => {
    const table = resourcesOf(template, 'AWS::DynamoDB::Table')[idOf(stack.storage.resultsTable)];
    const indexes = ((table?.Properties.GlobalSecondaryIndexes ?? []) as { IndexName: string }[]).map(
      (i) => i.IndexName,
    );
    assert.deepEqual(indexes, [RESULTS_TABLE.labelIndex.name, RESULTS_TABLE.rank2Index.name]);
    assert.ok(!indexes.some((name) => /job/.test(name)), indexes.join(', '));
  });
});

describe('schedules declared in configuration', () => {
  it('creates one schedule per declaration in the stack schedule group', () => {
    assert.equal(schedules.length, 2);
    const group = stack.resolve(stack.jobScheduler.scheduleGroup.scheduleGroupName);
    // CloudFormation names the group (Ref returns the name): nothing fixed survives a destroy.
    assert.deepEqual(group, { Ref: Object.keys(template.findResources('AWS::Scheduler::ScheduleGroup'))[0] });
    for (const s of schedules) assert.deepEqual(s.Properties.GroupName, group);
  });

  it('keeps the expression and time zone, with a flexible window', () => {
    const nightly = byName('nightly-datasets');
    assert.equal(nightly.ScheduleExpression, 'cron(0 2 * * ? *)');
    assert.equal(nightly.ScheduleExpressionTimezone, 'Europe/Paris');
    assert.deepEqual(nightly.FlexibleTimeWindow, {
      Mode: 'FLEXIBLE',
      MaximumWindowInMinutes: SCHEDULE_DELIVERY.flexibleWindowMinutes,
    });
    assert.equal(byName('hourly-inbox').ScheduleExpression, 'rate(1 hour)');
  });

  it('sends the start message to the plan queue with retries and the plan dead-letter queue', () => {
    const target = byName('nightly-datasets').Target as Record<string, unknown>;
    assert.deepEqual(target.Arn, { 'Fn::GetAtt': [planId, 'Arn'] });
    assert.deepEqual(target.RoleArn, { 'Fn::GetAtt': [idOf(stack.jobScheduler.schedulerRole), 'Arn'] });
    assert.deepEqual(target.DeadLetterConfig, { Arn: { 'Fn::GetAtt': [planDlqId, 'Arn'] } });
    assert.deepEqual(target.RetryPolicy, {
      MaximumRetryAttempts: SCHEDULE_DELIVERY.retryAttempts,
      MaximumEventAgeInSeconds: SCHEDULE_DELIVERY.maxEventAgeSeconds,
    });
  });

  it('starts a job named after the schedule, keyed by the scheduled time; bucket defaults to the images bucket', () => {
    const input = (byName('nightly-datasets').Target as { Input: unknown }).Input;
    const text = JSON.stringify(input);
    assert.match(text, /<aws\.scheduler\.scheduled-time>/);
    // The bucket is a reference to the images bucket, so the input is a Fn::Join.
    assert.ok(text.includes(idOf(stack.storage.imagesBucket)), 'names the images bucket');
    const other = JSON.parse((byName('hourly-inbox').Target as { Input: string }).Input);
    assert.deepEqual(other, {
      kind: 'start',
      request: {
        bucket: 'other-bucket',
        prefix: 'inbox/',
        target: 'lambda',
        mode: 'all',
        scheduleName: 'hourly-inbox',
        idempotencyKey: 'hourly-inbox@<aws.scheduler.scheduled-time>',
      },
    });
  });

  it('lets the scheduler role send only to the plan queue and its dead-letter queue', () => {
    const statements = statementsOfRole(template, idOf(stack.jobScheduler.schedulerRole));
    assert.deepEqual(
      statements.flatMap((s) => [s.Action].flat()),
      ['sqs:SendMessage'],
    );
    assert.deepEqual(
      statements
        .flatMap((s) => [s.Resource].flat())
        .map(referencedId)
        .sort(),
      [planDlqId, planId].sort(),
    );
  });

  it('refuses a bad declaration at synthesis with the schedule error', () => {
    assert.throws(() => scheduleContext('not json'), ScheduleError);
    assert.throws(() => scheduleContext({ name: 'x' }), ScheduleError);
    assert.deepEqual(scheduleContext('[{"name":"a"}]'), [{ name: 'a' }]);
    assert.throws(
      () =>
        synthesizeLabeler({
          gpuWorkers: false,
          schedules: [{ name: 'bad', expression: 'cron(0 2 * * *)', prefix: '' }],
        }),
      (error: unknown) => error instanceof ScheduleError && /6 fields|has 5 fields/.test(error.message),
    );
  });
});

describe('outputs the CLI reads', () => {
  it('exports every name `labeler jobs --stack` needs', () => {
    const outputs = Object.keys(template.toJSON().Outputs ?? {});
    for (const name of [
      'PlanQueueUrl',
      'PlanDlqArn',
      'JobsTable',
      'ResultsTable',
      'ImagesBucket',
      'IncomingQueueUrl',
      'JobsQueueUrl',
      'JobsDlqUrl',
      'ReadableBuckets',
      'BulkQueueUrl',
      'ScheduleGroupName',
      'SchedulerRoleArn',
    ]) {
      assert.ok(outputs.includes(name), `output ${name}`);
    }
  });
});

describe('buckets a job may label (cdk.json readableBuckets)', () => {
  const roleOf = (functionId: string) =>
    referencedId(resourcesOf(template, 'AWS::Lambda::Function')[functionId]?.Properties.Role) ?? '';

  it('lets classify read any key of the images bucket and of each readable bucket, and plan-job list them', () => {
    const reads = statementsOfRole(template, roleOf(idOf(stack.classify.function))).filter((s) =>
      s.Action.includes('s3:GetObject'),
    );
    const text = JSON.stringify(reads);
    assert.ok(text.includes(`"arn:`) && text.includes(':s3:::other-bucket/*'), 'other-bucket/*');
    assert.ok(text.includes(idOf(stack.storage.imagesBucket)), 'the images bucket');
    const lists = statementsOfRole(template, roleOf(planFunctionId)).filter((s) =>
      s.Action.includes('s3:ListBucket'),
    );
    assert.match(JSON.stringify(lists), /:s3:::other-bucket"/);
    const output = JSON.stringify(template.toJSON().Outputs.ReadableBuckets.Value);
    assert.ok(output.includes(idOf(stack.storage.imagesBucket)) && output.includes('other-bucket'));
  });

  it('refuses at synthesis a schedule over a bucket the stack cannot read', () => {
    assert.throws(
      () =>
        synthesizeLabeler({
          gpuWorkers: false,
          schedules: [{ name: 'x', expression: 'rate(1 hour)', bucket: 'not-granted', prefix: '' }],
        }),
      (error: unknown) =>
        error instanceof ScheduleError &&
        /s3:\/\/not-granted, which this stack cannot read/.test(error.message),
    );
  });

  it('refuses at synthesis a schedule naming a model the stack does not host; a hosted one by name or id@version passes', () => {
    assert.throws(
      () =>
        synthesizeLabeler({
          gpuWorkers: false,
          schedules: [{ name: 'x', expression: 'rate(1 hour)', prefix: '', model: 'candidate' }],
        }),
      (error: unknown) =>
        error instanceof ScheduleError &&
        /model "candidate", which this stack does not host: name one of cdk.json's "models" \(fashion-efficientnet\)/.test(
          error.message,
        ),
    );
    for (const model of ['fashion-efficientnet', 'fashion-efficientnet@1.0.0']) {
      synthesizeLabeler({
        gpuWorkers: false,
        schedules: [{ name: 'x', expression: 'rate(1 hour)', prefix: '', model }],
      });
    }
  });

  it('refuses a readableBuckets entry that is not a bucket name', () => {
    assert.throws(
      () => synthesizeLabeler({ gpuWorkers: false, readableBuckets: ['Not_A_Bucket'] }),
      /"Not_A_Bucket" is not an S3 bucket name/,
    );
  });
});
