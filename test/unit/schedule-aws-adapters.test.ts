import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SchedulerSchedules } from '../../shared/aws/schedules-scheduler.ts';
import { readStackOutputs } from '../../shared/aws/stack-outputs.ts';
import { LabelerError } from '../../shared/errors.ts';
import { ScheduleError } from '../../shared/labeling/schedules.ts';

const credentials = { accessKeyId: 'stub', secretAccessKey: 'stub' };

interface Recorded {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly body: string;
}

/** An HTTP server on 127.0.0.1 that answers as the service would; the real SDK client talks to it. */
async function stubServer(
  answer: (request: Recorded) => { status: number; body: string; type: string; errorType?: string },
): Promise<{ server: Server; url: string; requests: Recorded[] }> {
  const requests: Recorded[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const recorded = {
      method: req.method ?? '',
      path: decodeURIComponent(url.pathname),
      query: url.searchParams,
      body: Buffer.concat(chunks).toString('utf8'),
    };
    requests.push(recorded);
    const { status, body, type, errorType } = answer(recorded);
    res.writeHead(status, {
      'content-type': type,
      'x-amzn-requestid': 'stub',
      // How a REST-JSON service names its error.
      ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
    });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, requests };
}

describe('Scheduler adapter against a stub Scheduler API', () => {
  const stored = new Map<string, Record<string, unknown>>();
  let stub: Awaited<ReturnType<typeof stubServer>>;
  let client: SchedulerClient;
  let schedules: SchedulerSchedules;
  const names = {
    scheduleGroup: 'Labeler-Jobs-Group',
    schedulerRoleArn: 'arn:aws:iam::123456789012:role/scheduler',
    planQueueArn: 'arn:aws:sqs:eu-west-1:123456789012:Labeler-labeler-plan',
    planDlqArn: 'arn:aws:sqs:eu-west-1:123456789012:Labeler-labeler-plan-dlq',
  };
  const json = (status: number, value: unknown) => ({
    status,
    body: JSON.stringify(value),
    type: 'application/json',
    errorType: 'ResourceNotFoundException',
  });
  const notFound = (name: string) => ({
    status: 404,
    body: JSON.stringify({ Message: `Schedule ${name} does not exist.` }),
    type: 'application/json',
    errorType: 'ResourceNotFoundException',
  });

  before(async () => {
    stub = await stubServer((r) => {
      const name = r.path.replace(/^\/schedules\/?/, '');
      if (r.method === 'POST') {
        if (stored.has(name)) {
          return { ...json(409, { Message: 'exists' }), errorType: 'ConflictException' };
        }
        stored.set(name, { ...JSON.parse(r.body), Name: name });
        return json(200, { ScheduleArn: `arn:aws:scheduler:eu-west-1:123456789012:schedule/${name}` });
      }
      if (r.method === 'GET' && name === '') {
        return json(200, {
          Schedules: [...stored.keys()].map((Name) => ({ Name, GroupName: names.scheduleGroup })),
        });
      }
      if (r.method === 'GET') return stored.has(name) ? json(200, stored.get(name)) : notFound(name);
      if (r.method === 'DELETE') return stored.delete(name) ? json(200, {}) : notFound(name);
      return json(400, { Message: 'unexpected' });
    });
    client = new SchedulerClient({ region: 'eu-west-1', endpoint: stub.url, credentials, maxAttempts: 1 });
    schedules = new SchedulerSchedules(client, names);
  });
  after(() => {
    client.destroy();
    stub.server.close();
  });

  it('creates the schedule in the group, targeting the plan queue with the start message', async () => {
    await schedules.add({
      name: 'nightly',
      expression: 'cron(0 2 * * ? *)',
      timezone: 'Europe/Paris',
      bucket: 'labeler-images',
      prefix: 'datasets/',
      target: 'gpu',
      mode: 'stale',
    });
    const create = stub.requests.at(-1);
    assert.equal(create?.method, 'POST');
    assert.equal(create?.path, '/schedules/nightly');
    const body = JSON.parse(create?.body ?? '{}');
    assert.equal(body.GroupName, names.scheduleGroup);
    assert.equal(body.ScheduleExpression, 'cron(0 2 * * ? *)');
    assert.equal(body.ScheduleExpressionTimezone, 'Europe/Paris');
    assert.deepEqual(body.FlexibleTimeWindow, { Mode: 'FLEXIBLE', MaximumWindowInMinutes: 5 });
    assert.equal(body.State, 'ENABLED');
    assert.equal(body.Target.Arn, names.planQueueArn);
    assert.equal(body.Target.RoleArn, names.schedulerRoleArn);
    assert.deepEqual(body.Target.DeadLetterConfig, { Arn: names.planDlqArn });
    assert.deepEqual(body.Target.RetryPolicy, { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 3600 });
    assert.deepEqual(JSON.parse(body.Target.Input), {
      kind: 'start',
      request: {
        bucket: 'labeler-images',
        prefix: 'datasets/',
        target: 'gpu',
        mode: 'stale',
        scheduleName: 'nightly',
        idempotencyKey: 'nightly@<aws.scheduler.scheduled-time>',
      },
    });
    assert.ok(body.ClientToken, 'the SDK makes the create idempotent');
  });

  it('puts a schedule’s sample and model in its target input, and reads them back from it', async () => {
    await schedules.add({
      name: 'sampled',
      expression: 'rate(1 day)',
      bucket: 'labeler-images',
      prefix: 'inbox/',
      target: 'lambda',
      mode: 'stale',
      sample: { percent: 5, seed: 7 },
      model: 'fashion@2',
    });
    const input = JSON.parse(JSON.parse(stub.requests.at(-1)?.body ?? '{}').Target.Input);
    assert.deepEqual([input.request.sample, input.request.model], [{ percent: 5, seed: 7 }, 'fashion@2']);
    const back = (await schedules.list()).find((s) => s.name === 'sampled');
    assert.deepEqual([back?.sample, back?.model], [{ percent: 5, seed: 7 }, 'fashion@2']);
    await schedules.remove('sampled');
  });

  it('lists the group and reads each schedule back from its target input', async () => {
    assert.deepEqual(await schedules.list(), [
      {
        name: 'nightly',
        expression: 'cron(0 2 * * ? *)',
        timezone: 'Europe/Paris',
        bucket: 'labeler-images',
        prefix: 'datasets/',
        target: 'gpu',
        mode: 'stale',
      },
    ]);
    const listing = stub.requests.find((r) => r.method === 'GET' && r.path === '/schedules');
    assert.equal(listing?.query.get('ScheduleGroup'), names.scheduleGroup);
  });

  it('refuses a duplicate name and a bad expression with their codes, sending nothing for the latter', async () => {
    const spec = {
      name: 'nightly',
      expression: 'rate(1 day)',
      bucket: 'b-1',
      prefix: '',
      target: 'lambda',
      mode: 'all',
    } as const;
    await assert.rejects(
      schedules.add(spec),
      (e: unknown) => e instanceof LabelerError && e.code === 'schedule/exists',
    );
    const before = stub.requests.length;
    await assert.rejects(
      schedules.add({ ...spec, name: 'other', expression: 'rate(1 days)' }),
      ScheduleError,
    );
    assert.equal(stub.requests.length, before);
  });

  it('deletes by name in the group; an unknown name is schedule/not-found', async () => {
    await schedules.remove('nightly');
    const del = stub.requests.at(-1);
    assert.equal(del?.method, 'DELETE');
    assert.equal(del?.path, '/schedules/nightly');
    assert.equal(del?.query.get('groupName'), names.scheduleGroup);
    assert.deepEqual(await schedules.list(), []);
    await assert.rejects(
      schedules.remove('nightly'),
      (e: unknown) => e instanceof LabelerError && e.code === 'schedule/not-found',
    );
  });
});

describe('stack outputs against a stub CloudFormation API', () => {
  let stub: Awaited<ReturnType<typeof stubServer>>;
  let client: CloudFormationClient;
  const xml = (status: number, body: string) => ({ status, body, type: 'text/xml' });

  before(async () => {
    stub = await stubServer((r) => {
      const form = new URLSearchParams(r.body);
      if (form.get('Action') !== 'DescribeStacks') return xml(400, '<ErrorResponse/>');
      const name = form.get('StackName');
      if (name !== 'Labeler') {
        return xml(
          400,
          `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id ${name} does not exist</Message></Error><RequestId>stub</RequestId></ErrorResponse>`,
        );
      }
      return xml(
        200,
        `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>
<StackName>Labeler</StackName><StackId>arn:aws:cloudformation:eu-west-1:123456789012:stack/Labeler/1</StackId>
<CreationTime>2026-11-01T00:00:00Z</CreationTime><StackStatus>UPDATE_COMPLETE</StackStatus><Outputs>
<member><OutputKey>PlanQueueUrl</OutputKey><OutputValue>https://sqs.eu-west-1.amazonaws.com/123456789012/Labeler-labeler-plan</OutputValue></member>
<member><OutputKey>JobsTable</OutputKey><OutputValue>Labeler-labeler-jobs</OutputValue></member>
</Outputs></member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>stub</RequestId></ResponseMetadata></DescribeStacksResponse>`,
      );
    });
    client = new CloudFormationClient({
      region: 'eu-west-1',
      endpoint: stub.url,
      credentials,
      maxAttempts: 1,
    });
  });
  after(() => {
    client.destroy();
    stub.server.close();
  });

  it('reads each output of the named stack', async () => {
    const outputs = await readStackOutputs('Labeler', { client });
    assert.equal(outputs.get('JobsTable'), 'Labeler-labeler-jobs');
    assert.equal(
      outputs.get('PlanQueueUrl'),
      'https://sqs.eu-west-1.amazonaws.com/123456789012/Labeler-labeler-plan',
    );
    assert.equal(outputs.region, 'eu-west-1');
    assert.equal(new URLSearchParams(stub.requests.at(-1)?.body).get('StackName'), 'Labeler');
  });

  it('names a missing output and the stack status', async () => {
    const outputs = await readStackOutputs('Labeler', { client });
    assert.throws(
      () => outputs.get('SchedulerRoleArn'),
      (e: unknown) =>
        e instanceof LabelerError &&
        e.code === 'stack/missing-output' &&
        /SchedulerRoleArn.*UPDATE_COMPLETE/.test(e.message),
    );
  });

  it('says stack/not-found for a stack that does not exist', async () => {
    await assert.rejects(
      readStackOutputs('Nope', { client }),
      (e: unknown) => e instanceof LabelerError && e.code === 'stack/not-found' && /Nope/.test(e.message),
    );
  });
});
