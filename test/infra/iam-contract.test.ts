import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueUrlCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { connectionTo, jobsResourcesOf, type StackConnection } from '../../cli/stack.ts';
import { readStatus } from '../../cli/status-command.ts';
import { runUpload } from '../../cli/upload-display.ts';
import { DEFAULT_MODEL_DIR as BUNDLED_MODEL_FOLDER } from '../../infra/image.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { type AwsCall, CALL_LOG_ENV } from '../../shared/aws/call-recorder.ts';
import { createClassifyDeps, makeClassifyHandler } from '../../shared/aws/classify-handler.ts';
import { type AwsClients, createAwsClients, LOCAL_CREDENTIALS } from '../../shared/aws/clients.ts';
import { listDeadLetters, startRedrive } from '../../shared/aws/dead-letters.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import { createJobsService, type JobsResources } from '../../shared/aws/jobs-service.ts';
import { createPlanPorts } from '../../shared/aws/plan-job.ts';
import { SqsBatchConsumer } from '../../shared/aws/sqs-batch-consumer.ts';
import { readQueueDepth } from '../../shared/aws/stack-status.ts';
import type { WorkerConfig } from '../../shared/config.ts';
import type { Job } from '../../shared/labeling/jobs.ts';
import { planStep } from '../../shared/labeling/plan-job.ts';
import { answerQuery } from '../../shared/labeling/query-api.ts';
import { readManifest } from '../../shared/model/manifest.ts';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../../shared/paths.ts';
import { CLASSIFY, ENV, IMAGE_LIMITS, LABELING, RESOURCE_NAMES } from '../../shared/settings.ts';
import { s3EventBody } from '../helpers/events.ts';
import {
  ACCOUNT,
  type Decision,
  evaluate,
  type IamRequest,
  type Principal,
  ResolvedTemplate,
  requestsOf,
  type TemplateJson,
} from '../helpers/iam-contract.ts';
import { waitFor } from '../helpers/wait.ts';
import { makeSecondModel, synthesizeLabeler } from './support.ts';

/**
 * The IAM contract (GitHub issue 19, item 3; decision 0023). Each principal's real code runs
 * against the emulators with its SDK calls recorded (shared/aws/call-recorder.ts); every
 * recorded call is then evaluated against the synthesized template's policies (identity
 * policies of the principal's role, the bucket and queue policies with their TLS-only denies)
 * by @cloud-copilot/iam-simulate. Every call must be allowed, and each principal must be
 * denied things it does not need. The scenarios run here, so the result does not depend on
 * which other test files ran first.
 */

const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const SAMPLE = join(DEFAULT_MODEL_DIR, 'samples', 'test-00000.png');
const SAMPLE_2 = join(DEFAULT_MODEL_DIR, 'samples', 'test-00001.png');
const STACK_NAME = 'Labeler';

// --- the template ---------------------------------------------------------------------------
const synth = synthesizeLabeler();
after(() => synth.cleanup());
const { stack } = synth;
const templateJson = synth.assembly.getStackArtifact(stack.artifactId).template as TemplateJson;

function idOf(construct: IConstruct): string {
  return Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
}
/** Buckets and tables carry no name in the template: which RESOURCE_NAMES entry each one is. */
const BUCKETS = {
  imagesBucket: idOf(stack.storage.imagesBucket),
  resultsBucket: idOf(stack.storage.resultsBucket),
  resultsTable: idOf(stack.storage.resultsTable),
  jobsTable: idOf(stack.storage.jobsTable),
};

function roleOfFunction(fn: IConstruct): string {
  const props = templateJson.Resources[idOf(fn)]?.Properties as { Role?: { 'Fn::GetAtt': [string, string] } };
  const role = props.Role?.['Fn::GetAtt'][0];
  assert.ok(role, `${fn.node.path} has a role`);
  return role;
}
function taskRole(): string {
  assert.ok(stack.gpuWorkers, 'the contract synthesizes the stack with GPU workers');
  const props = templateJson.Resources[idOf(stack.gpuWorkers.taskDefinition)]?.Properties as {
    TaskRoleArn?: { 'Fn::GetAtt': [string, string] };
  };
  const role = props.TaskRoleArn?.['Fn::GetAtt'][0];
  assert.ok(role, 'the GPU task definition has a task role');
  return role;
}

/** The roles of the principals whose calls are recorded, by recorder principal name. */
const ROLES = {
  classify: roleOfFunction(stack.classify.function),
  'plan-job': roleOfFunction(stack.jobScheduler.function),
  'gpu-worker': taskRole(),
  query: roleOfFunction(stack.queryApi.function),
};
type RoleName = keyof typeof ROLES;

/**
 * The person running the CLI against a deployed stack: their identity policy is not in the
 * template (an administrator's, here), so what the contract checks for them is that the
 * stack's resource policies let every call of the CLI through, and refuse it without TLS.
 */
const USER: Principal = {
  name: 'user',
  arn: `arn:aws:iam::${ACCOUNT}:user/labeler-operator`,
  identityPolicies: [
    {
      name: 'administrator',
      policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] },
    },
  ],
};

function principalsOf(template: ResolvedTemplate): Record<RoleName | 'user', Principal> {
  const roles = Object.fromEntries(
    Object.entries(ROLES).map(([name, role]) => [name, template.principalOfRole(name, role)]),
  ) as Record<RoleName, Principal>;
  return { ...roles, user: USER };
}

/** The queues an event source mapping feeds to a function, by local name (RESOURCE_NAMES value). */
function queuesFeeding(fn: IConstruct, template: ResolvedTemplate): string[] {
  return Object.values(template.resourcesOf('AWS::Lambda::EventSourceMapping'))
    .filter((m) => (m.Properties?.FunctionName as { Ref?: string } | undefined)?.Ref === idOf(fn))
    .map((m) => String(template.resolve(m.Properties?.EventSourceArn)).split(':').at(-1) ?? '')
    .map((name) => name.slice(`${STACK_NAME}-`.length));
}

const resolved = new ResolvedTemplate(templateJson, STACK_NAME, BUCKETS);

// --- the scenarios --------------------------------------------------------------------------
const calls: AwsCall[] = [];
let local: LocalStack;
let callLogDir: string;
let gpuWorker: ChildProcess | undefined;
const opened: AwsClients[] = [];

function recordedClients(principal: string): AwsClients {
  const clients = createAwsClients({
    region: local.region,
    endpoints: local.endpoints,
    local: true,
    recorder: { principal, record: (call) => calls.push(call) },
  });
  opened.push(clients);
  return clients;
}

async function queueUrl(name: string): Promise<string> {
  const got = await local.clients.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
  return got.QueueUrl ?? '';
}

/** Runs `handler` as an event source mapping does, as `principal` (Lambda polls with the function's role). */
function eventSource(
  principal: AwsClients,
  url: string,
  name: string,
  handler: ConstructorParameters<typeof SqsBatchConsumer>[0]['handler'],
  batchSize: number,
): SqsBatchConsumer {
  const consumer = new SqsBatchConsumer({
    sqs: principal.sqs,
    queueUrl: url,
    queueArn: `arn:aws:sqs:${local.region}:000000000000:${name}`,
    region: local.region,
    handler,
    batchSize,
    maxBatchingWindowMs: 0,
    functionTimeoutMs: 60_000,
    onError: () => {},
  });
  consumer.start();
  return consumer;
}

async function drained(url: string): Promise<boolean> {
  const depth = await readQueueDepth(local.clients.sqs, url);
  return depth.visible === 0 && depth.inFlight === 0;
}

function jobResources(): JobsResources {
  return jobsResourcesOf(connectionTo(local).resources);
}

const finished = (job: Job | undefined): Job | undefined =>
  job && ['succeeded', 'failed', 'cancelled'].includes(job.status) ? job : undefined;

before(
  async () => {
    process.env.ORT_DISABLE_TELEMETRY = '1';
    callLogDir = mkdtempSync(join(tmpdir(), 'labeler-iam-'));
    local = await startLocalStack({ worker: false, planner: false, log: quiet, schedulePollMs: 0 });
    const glue = local.clients;
    const names = local.names;
    const manifest = await readManifest(DEFAULT_MODEL_DIR);
    const model = { id: manifest.id, version: manifest.version };
    const png = readFileSync(SAMPLE);
    const put = (key: string, body: Buffer) =>
      glue.s3.send(new PutObjectCommand({ Bucket: names.imagesBucket, Key: key, Body: body }));
    // Dataset objects outside the upload prefix (jobs label them) and a corrupt upload.
    for (const key of ['datasets/x/a.png', 'datasets/x/b.png', 'datasets/g/c.png', 'datasets/s/d.png'])
      await put(key, png);
    await put('images/bad.png', png.subarray(0, 60));
    // A dead-lettered upload event for the CLI's dlq commands.
    await glue.sqs.send(
      new SendMessageCommand({
        QueueUrl: local.queues.incomingDlq.url,
        MessageBody: s3EventBody({ bucket: names.imagesBucket, key: 'images/gone.png', eTag: 'e', size: 1 }),
      }),
    );

    // The user, through the CLI's code paths against a deployed stack.
    const user = recordedClients('user');
    // The local stack's names, taken the way a deployed stack's CLI paths take them.
    const connection: StackConnection = {
      ...connectionTo(local),
      kind: 'deployed',
      name: STACK_NAME,
      clients: user,
    };
    const upload = await runUpload(connection, {
      paths: [SAMPLE_2],
      prefix: 'images/',
      signal: new AbortController().signal,
    });
    assert.equal(upload.uploaded, 1, 'the user uploaded one image');
    const userJobs = createJobsService(user, jobResources(), local.region);
    const lambdaJob = await userJobs.start({
      bucket: names.imagesBucket,
      prefix: 'datasets/x/',
      target: 'lambda',
      mode: 'all',
    });
    const gpuJob = await userJobs.start({
      bucket: names.imagesBucket,
      prefix: 'datasets/g/',
      target: 'gpu',
      mode: 'all',
    });
    await userJobs.list({ limit: 10 });
    await readStatus(connection, 10);
    const dlq = {
      role: 'incoming' as const,
      dlqUrl: local.queues.incomingDlq.url,
      sourceUrl: local.queues.incoming.url,
    };
    const letters = await listDeadLetters(user.sqs, dlq, {
      max: 10,
      results: new DynamoResultsStore(user.db, names.resultsTable),
      model,
    });
    assert.equal(letters.length, 1, 'the user listed the dead letter');
    // The emulator has no message move tasks: the call is recorded before it is refused.
    await startRedrive(user.sqs, dlq).catch(() => undefined);

    // A schedule firing: EventBridge Scheduler sends a start request to the plan queue.
    await glue.sqs.send(
      new SendMessageCommand({
        QueueUrl: local.queues.plan.url,
        MessageBody: JSON.stringify({
          kind: 'start',
          request: {
            bucket: names.imagesBucket,
            prefix: 'datasets/s/',
            target: 'lambda',
            mode: 'all',
            scheduleName: 'nightly',
            idempotencyKey: 'nightly@2026-01-01T00:00:00Z',
          },
        }),
      }),
    );

    // The plan-job function: pages of one object, so a job continues itself.
    const planClients = recordedClients('plan-job');
    const ports = createPlanPorts(planClients, jobResources(), local.region);
    const planner = eventSource(
      planClients,
      local.queues.plan.url,
      names.planQueue,
      async (event) => {
        for (const record of event.Records)
          await planStep(record.body, ports, { pageSize: 1, stepBudgetMs: 60_000, maxPagesPerStep: 1 });
        return { batchItemFailures: [] };
      },
      1,
    );
    await waitFor(
      'every job planned',
      async () => {
        const jobs = await local.jobs.list({ limit: 10 });
        return jobs.length === 3 &&
          jobs.every((j) => j.planningDone) &&
          (await drained(local.queues.plan.url))
          ? true
          : undefined;
      },
      60_000,
    );

    // The classify function on every queue an event source mapping feeds it.
    const classifyClients = recordedClients('classify');
    const config: WorkerConfig = {
      region: local.region,
      resultsTable: names.resultsTable,
      resultsBucket: names.resultsBucket,
      modelDir: DEFAULT_MODEL_DIR,
      executionProviders: ['cpu'],
      intraOpThreads: 1,
      topK: LABELING.topK,
      batchSize: CLASSIFY.batchSize,
      concurrency: 2,
      maxBytes: IMAGE_LIMITS.maxBytes,
      maxPixels: IMAGE_LIMITS.maxPixels,
      jobsTable: names.jobsTable,
      // Every job "large": its finishing recount goes to the plan queue (decision 0027), whose
      // steps the plan-job function above, still running, reads.
      planQueueUrl: local.queues.plan.url,
      inlineRecountMax: 0,
      maxReceiveCount: CLASSIFY.maxReceiveCount,
    };
    const deps = await createClassifyDeps(config, classifyClients, quiet);
    const handler = makeClassifyHandler(deps, () => {});
    const classifyQueues = await Promise.all(
      queuesFeeding(stack.classify.function, resolved).map(async (name) => ({
        name,
        url: await queueUrl(name),
      })),
    );
    const consumers = classifyQueues.map((q) =>
      eventSource(classifyClients, q.url, q.name, handler, CLASSIFY.batchSize),
    );
    const results = new DynamoResultsStore(glue.db, names.resultsTable);
    await waitFor(
      'the classify function to label uploads and lambda jobs',
      async () => {
        const jobs = await Promise.all([
          local.jobs.get(lambdaJob.jobId),
          ...(await local.jobs.list({ limit: 10 }))
            .filter((j) => j.target === 'lambda')
            .map((j) => local.jobs.get(j.jobId)),
        ]);
        const uploads = await Promise.all(
          ['images/test-00001.png', 'images/bad.png'].map((key) =>
            results.getByImage(names.imagesBucket, key),
          ),
        );
        const queuesEmpty = (await Promise.all(classifyQueues.map((q) => drained(q.url)))).every(Boolean);
        return jobs.every(finished) && uploads.every((r) => r.length > 0) && queuesEmpty ? true : undefined;
      },
      120_000,
    );
    for (const consumer of consumers) await consumer.stop();
    await planner.stop();
    await deps.labeler.classifier.release();

    // The GPU worker's entry point, as ECS runs it, recording to a file (CALL_LOG_ENV).
    const gpuLog = join(callLogDir, 'gpu-worker.jsonl');
    gpuWorker = spawn(process.execPath, ['--import', 'tsx', 'functions/gpu-worker/main.ts'], {
      cwd: PACKAGE_ROOT,
      stdio: ['ignore', 'ignore', 'ignore'],
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        [ENV.region]: local.region,
        [ENV.resultsTable]: names.resultsTable,
        [ENV.resultsBucket]: names.resultsBucket,
        [ENV.jobsTable]: names.jobsTable,
        [ENV.bulkQueueUrl]: local.queues.bulk.url,
        [ENV.bulkQueueArn]: local.queues.bulk.arn,
        [ENV.modelDir]: DEFAULT_MODEL_DIR,
        [ENV.executionProviders]: 'cpu',
        [ENV.allowCpuFallback]: 'true',
        [ENV.intraOpThreads]: '1',
        [ENV.ortDisableTelemetry]: '1',
        [ENV.serviceName]: 'labeler-gpu-worker',
        AWS_ENDPOINT_URL_S3: local.endpoints.s3,
        AWS_ENDPOINT_URL_SQS: local.endpoints.sqs,
        AWS_ENDPOINT_URL_DYNAMODB: local.endpoints.dynamodb,
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        [CALL_LOG_ENV.file]: gpuLog,
        [CALL_LOG_ENV.principal]: 'gpu-worker',
      },
    });
    await waitFor(
      'the GPU worker to label its job',
      async () => finished(await local.jobs.get(gpuJob.jobId)),
      120_000,
    );
    const exited = new Promise((resolve) => gpuWorker?.once('exit', resolve));
    gpuWorker.kill('SIGTERM');
    await exited;
    gpuWorker = undefined;
    calls.push(
      ...readFileSync(gpuLog, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as AwsCall),
    );

    // The query API's handler: by image, by label.
    const store = new DynamoResultsStore(recordedClients('query').db, names.resultsTable);
    const defaults = { bucket: names.imagesBucket, model, log: quiet };
    const byImage = await answerQuery(
      { method: 'GET', path: `/images/${encodeURIComponent('images/test-00001.png')}`, query: {} },
      store,
      defaults,
    );
    assert.equal(byImage.status, 200);
    const label = (await results.getByImage(names.imagesBucket, 'images/test-00001.png'))[0]?.labels?.[0]
      ?.label;
    assert.ok(label, 'the uploaded image has a top label');
    const byLabel = await answerQuery(
      { method: 'GET', path: `/labels/${encodeURIComponent(label)}`, query: { minScore: '0' } },
      store,
      defaults,
    );
    assert.equal(byLabel.status, 200);
  },
  { timeout: 300_000 },
);

after(async () => {
  gpuWorker?.kill('SIGKILL');
  for (const clients of opened) {
    clients.s3.destroy();
    clients.sqs.destroy();
    clients.dynamo.destroy();
  }
  await local?.stop();
  if (callLogDir) rmSync(callLogDir, { recursive: true, force: true });
});

// --- the contract ---------------------------------------------------------------------------
async function decisions(template: ResolvedTemplate, principal: string): Promise<Decision[]> {
  const principals = principalsOf(template) as Record<string, Principal>;
  const who = principals[principal];
  assert.ok(who, `a principal named ${principal}`);
  const requests = new Map<string, IamRequest>();
  for (const call of calls.filter((c) => c.principal === principal)) {
    for (const request of requestsOf(call, template))
      requests.set(`${request.action} ${request.resource}`, request);
  }
  return Promise.all(
    [...requests.values()].map(async (request) => ({
      request,
      result: await evaluate(who, request, template),
    })),
  );
}

const refused = (all: readonly Decision[]): string[] =>
  all
    .filter((d) => d.result !== 'Allowed')
    .map((d) => `${d.request.call}: ${d.request.action} on ${d.request.resource} is ${d.result}`);

describe('the IAM contract: every AWS call each principal makes is allowed by the synthesized policies', () => {
  it('maps every name in RESOURCE_NAMES to a resource of the template', () => {
    const unmapped = Object.entries(resolved.localNames()).filter(([, arn]) => arn === undefined);
    assert.deepEqual(unmapped, [], 'each RESOURCE_NAMES entry is a bucket, queue or table of the stack');
  });

  for (const principal of [...Object.keys(ROLES), 'user']) {
    it(`${principal}: every recorded call is allowed`, async () => {
      const all = await decisions(resolved, principal);
      if (process.env.IAM_CONTRACT_DUMP)
        for (const d of all) console.log(principal, d.request.action, d.request.resource, d.result);
      assert.ok(all.length > 0, `${principal} made calls`);
      assert.deepEqual(refused(all), []);
    });
  }

  it('the scenarios cover each principal’s paths (the contract cannot pass by recording nothing)', () => {
    const made = (principal: string) =>
      new Set(
        calls
          .filter((c) => c.principal === principal)
          .flatMap((c) =>
            requestsOf(c, resolved).map((r) => `${r.action} ${r.call.split(' ').slice(1).join(' ')}`),
          ),
      );
    const has = (principal: string, action: string, what: string) =>
      assert.ok(
        [...made(principal)].some((m) => m.startsWith(action) && m.includes(what)),
        `${principal} made ${action} on ${what}: ${[...made(principal)].join('\n')}`,
      );
    has('classify', 's3:GetObject', `s3://${RESOURCE_NAMES.imagesBucket}/images/test-00001.png`);
    has('classify', 's3:GetObject', `s3://${RESOURCE_NAMES.imagesBucket}/datasets/x/`);
    has('classify', 's3:GetObject', `s3://${RESOURCE_NAMES.imagesBucket}/images/bad.png`);
    has('classify', 's3:PutObject', `s3://${RESOURCE_NAMES.resultsBucket}/results/`);
    has('classify', 'sqs:ReceiveMessage', RESOURCE_NAMES.incomingQueue);
    has('classify', 'dynamodb:UpdateItem', RESOURCE_NAMES.jobsTable);
    // Every job here is recounted in steps: the classify function sends the first, the
    // plan-job function reads the markers (a small job's inline recount is classify's Query).
    has('classify', 'sqs:SendMessage', RESOURCE_NAMES.planQueue);
    has('plan-job', 'dynamodb:Query', RESOURCE_NAMES.jobsTable);
    has('plan-job', 's3:ListBucket', `s3://${RESOURCE_NAMES.imagesBucket}`);
    has('plan-job', 'sqs:SendMessage', RESOURCE_NAMES.planQueue);
    has('plan-job', 'sqs:SendMessage', RESOURCE_NAMES.bulkQueue);
    has('plan-job', 'sqs:ReceiveMessage', RESOURCE_NAMES.planQueue);
    has('gpu-worker', 's3:GetObject', `s3://${RESOURCE_NAMES.imagesBucket}/datasets/g/c.png`);
    has('gpu-worker', 'sqs:ReceiveMessage', RESOURCE_NAMES.bulkQueue);
    has('gpu-worker', 'dynamodb:PutItem', RESOURCE_NAMES.resultsTable);
    has('query', 'dynamodb:Query', `${RESOURCE_NAMES.resultsTable} index`);
    has('user', 's3:PutObject', `s3://${RESOURCE_NAMES.imagesBucket}/images/test-00001.png`);
    has('user', 'sqs:SendMessage', RESOURCE_NAMES.planQueue);
    has('user', 'sqs:StartMessageMoveTask', RESOURCE_NAMES.incomingDlq);
    has('user', 'sqs:ReceiveMessage', RESOURCE_NAMES.incomingDlq);
  });
});

describe('the IAM contract: least privilege', () => {
  const images = (key: string) => `${resolved.bucketArn(RESOURCE_NAMES.imagesBucket)}/${key}`;
  const results = (key: string) => `${resolved.bucketArn(RESOURCE_NAMES.resultsBucket)}/${key}`;
  const table = (name: string) => resolved.tableArn(name);
  const queue = (name: string) => resolved.queueArn(name);
  /** Things each principal does not need and must be refused. */
  const DENIED: Record<string, Array<[string, string]>> = {
    classify: [
      ['s3:PutObject', images('images/x.png')],
      ['s3:DeleteObject', images('images/x.png')],
      ['s3:GetObject', results('results/x.jsonl')],
      ['s3:GetObject', 'arn:aws:s3:::someone-elses-bucket/x.png'],
      ['dynamodb:Scan', table(RESOURCE_NAMES.resultsTable)],
      ['dynamodb:DeleteItem', table(RESOURCE_NAMES.jobsTable)],
      ['dynamodb:GetItem', table('another-table')],
      ['sqs:ReceiveMessage', queue(RESOURCE_NAMES.planQueue)],
      ['sqs:ReceiveMessage', queue(RESOURCE_NAMES.bulkQueue)],
    ],
    'plan-job': [
      ['s3:GetObject', images('images/x.png')],
      ['s3:PutObject', images('images/x.png')],
      ['s3:GetObject', results('results/x.jsonl')],
      ['dynamodb:GetItem', table(RESOURCE_NAMES.resultsTable)],
      ['sqs:ReceiveMessage', queue(RESOURCE_NAMES.bulkQueue)],
    ],
    'gpu-worker': [
      ['s3:PutObject', images('images/x.png')],
      ['s3:ListBucket', resolved.bucketArn(RESOURCE_NAMES.imagesBucket)],
      ['sqs:SendMessage', queue(RESOURCE_NAMES.planQueue)],
      ['sqs:ReceiveMessage', queue(RESOURCE_NAMES.incomingQueue)],
      ['dynamodb:Query', `${table(RESOURCE_NAMES.resultsTable)}/index/by-label`],
      ['dynamodb:GetItem', table('another-table')],
    ],
    query: [
      ['dynamodb:PutItem', table(RESOURCE_NAMES.resultsTable)],
      ['dynamodb:DeleteItem', table(RESOURCE_NAMES.resultsTable)],
      ['dynamodb:Scan', table(RESOURCE_NAMES.resultsTable)],
      ['dynamodb:GetItem', table(RESOURCE_NAMES.jobsTable)],
      ['s3:GetObject', images('images/x.png')],
    ],
  };
  const principals = principalsOf(resolved);

  for (const [name, denied] of Object.entries(DENIED)) {
    it(`${name} is refused what it does not need`, async () => {
      const who = principals[name as RoleName];
      const allowed: string[] = [];
      for (const [action, resource] of denied) {
        const result = await evaluate(who, { action, resource }, resolved);
        if (result === 'Allowed' || result.startsWith('error'))
          allowed.push(`${action} on ${resource}: ${result}`);
      }
      assert.deepEqual(allowed, []);
    });
  }

  it('every principal, the user included, is refused its own calls without TLS (the TLS-only denies)', async () => {
    const allowed: string[] = [];
    for (const principal of [...Object.keys(ROLES), 'user']) {
      const who = principalsOf(resolved)[principal as RoleName | 'user'];
      for (const d of await decisions(resolved, principal)) {
        if (!d.request.action.startsWith('s3:') && !d.request.action.startsWith('sqs:')) continue;
        const result = await evaluate(who, d.request, resolved, { 'aws:SecureTransport': 'false' });
        if (result !== 'ExplicitlyDenied')
          allowed.push(`${principal} ${d.request.call} over HTTP: ${result}`);
      }
    }
    assert.deepEqual(allowed, []);
  });
});

describe('the evaluator stays a test tool', () => {
  it('no shipped code imports @cloud-copilot (AGPL-3.0: a devDependency for tests only)', () => {
    const shipped = ['shared', 'functions', 'cli', 'infra', 'local', 'bin', 'ui'];
    // Exit status 1: no file matches.
    const grep = spawnSync('git', ['grep', '--untracked', '-lE', `['"]@cloud-copilot/`, '--', ...shipped], {
      cwd: PACKAGE_ROOT,
      encoding: 'utf8',
    });
    assert.equal(grep.status, 1, `files importing it: ${grep.stdout}${grep.stderr}`);
  });
});

describe('the IAM contract bites', () => {
  it('with the classify role reading images/* only, it fails naming the dataset read', async () => {
    const narrowed = structuredClone(templateJson) as TemplateJson;
    const imagesId = BUCKETS.imagesBucket;
    let narrowedOne = false;
    for (const policy of Object.values(narrowed.Resources)) {
      if (policy.Type !== 'AWS::IAM::Policy') continue;
      const props = policy.Properties as {
        Roles: Array<{ Ref?: string }>;
        PolicyDocument: { Statement: Array<Record<string, unknown>> };
      };
      if (!props.Roles.some((r) => r.Ref === ROLES.classify)) continue;
      for (const statement of props.PolicyDocument.Statement) {
        const actions = [statement.Action].flat();
        if (actions.includes('s3:GetObject') && JSON.stringify(statement.Resource).includes(imagesId)) {
          statement.Resource = { 'Fn::Join': ['', [{ 'Fn::GetAtt': [imagesId, 'Arn'] }, '/images/*']] };
          narrowedOne = true;
        }
      }
    }
    assert.ok(narrowedOne, 'the classify role has an s3:GetObject grant on the images bucket to narrow');
    const failures = refused(
      await decisions(new ResolvedTemplate(narrowed, STACK_NAME, BUCKETS), 'classify'),
    );
    assert.ok(
      failures.some((f) => f.startsWith(`GetObject s3://${RESOURCE_NAMES.imagesBucket}/datasets/x/`)),
      `the narrowed grant fails the dataset read: ${failures.join('\n')}`,
    );
    assert.ok(!failures.some((f) => f.includes('/images/')), 'uploads under images/ are still allowed');
  });
});

// --- several models (decision 0038) ---------------------------------------------------------
// A stack hosting two models, the second the default: its workers make the calls the first
// model's make, on their own queues. The recorded calls are replayed against that template
// with the first model's queue names written as the second's.
describe('the IAM contract with two models: each model’s workers are allowed the same calls on their own queues', () => {
  const secondModel = makeSecondModel();
  const two = synthesizeLabeler({
    models: [BUNDLED_MODEL_FOLDER, { name: 'second', dir: secondModel.dir }],
    defaultModel: 'second',
  });
  after(() => {
    two.cleanup();
    secondModel.cleanup();
  });
  const twoJson = two.assembly.getStackArtifact(two.stack.artifactId).template as TemplateJson;
  const twoResolved = new ResolvedTemplate(twoJson, STACK_NAME, BUCKETS);
  const [first, second] = two.stack.hostedModels;
  const secondGpu = two.stack.gpuWorkers?.services[1];
  assert.ok(first && second && secondGpu);
  const roleOf = (fn: IConstruct) => {
    const props = twoJson.Resources[idOf(fn)]?.Properties as { Role?: { 'Fn::GetAtt': [string, string] } };
    const role = props.Role?.['Fn::GetAtt'][0];
    assert.ok(role);
    return role;
  };
  const taskRoleOf = (task: IConstruct) => {
    const props = twoJson.Resources[idOf(task)]?.Properties as {
      TaskRoleArn?: { 'Fn::GetAtt': [string, string] };
    };
    const role = props.TaskRoleArn?.['Fn::GetAtt'][0];
    assert.ok(role);
    return role;
  };
  const principals = {
    firstClassify: twoResolved.principalOfRole('classify (first)', roleOf(first.classify.function)),
    secondClassify: twoResolved.principalOfRole('classify (second)', roleOf(second.classify.function)),
    secondGpu: twoResolved.principalOfRole('gpu-worker (second)', taskRoleOf(secondGpu.taskDefinition)),
    planJob: twoResolved.principalOfRole('plan-job', roleOf(two.stack.jobScheduler.function)),
  };
  /** The first model's local queue names, as the second model's. */
  const AS_SECOND: Record<string, string> = {
    [RESOURCE_NAMES.jobsQueue]: 'labeler-second-jobs',
    [RESOURCE_NAMES.bulkQueue]: 'labeler-second-bulk',
  };
  const renamed = (call: AwsCall): AwsCall => ({
    ...call,
    resources: call.resources.map((r) => {
      const rename = (value: string | undefined, sep: string) => {
        if (value === undefined) return value;
        const parts = value.split(sep);
        const last = parts.at(-1) ?? '';
        return [...parts.slice(0, -1), AS_SECOND[last] ?? last].join(sep);
      };
      return {
        ...r,
        ...(r.queueName !== undefined ? { queueName: rename(r.queueName, '/') } : {}),
        ...(r.queueUrl !== undefined ? { queueUrl: rename(r.queueUrl, '/') } : {}),
        ...(r.queueArn !== undefined ? { queueArn: rename(r.queueArn, ':') } : {}),
      };
    }),
  });
  async function refusedFor(who: Principal, recorded: readonly AwsCall[]): Promise<string[]> {
    const requests = new Map<string, IamRequest>();
    for (const call of recorded)
      for (const request of requestsOf(call, twoResolved))
        requests.set(`${request.action} ${request.resource}`, request);
    assert.ok(requests.size > 0, `${who.name}: calls to check`);
    const out: string[] = [];
    for (const request of requests.values()) {
      const result = await evaluate(who, request, twoResolved);
      if (result !== 'Allowed')
        out.push(`${request.call}: ${request.action} on ${request.resource} is ${result}`);
    }
    return out;
  }
  const of = (principal: string) => calls.filter((c) => c.principal === principal);

  it('the default (second) model’s classify role: uploads and its own jobs queue', async () => {
    assert.deepEqual(await refusedFor(principals.secondClassify, of('classify').map(renamed)), []);
  });

  it('the second model’s GPU task role: its own bulk queue', async () => {
    assert.deepEqual(await refusedFor(principals.secondGpu, of('gpu-worker').map(renamed)), []);
  });

  it('the first model’s classify role, no longer the default: everything but uploads', async () => {
    const incoming = `${STACK_NAME}-${RESOURCE_NAMES.incomingQueue}`;
    const refused = await refusedFor(principals.firstClassify, of('classify'));
    assert.ok(refused.length > 0 && refused.every((r) => r.includes(incoming)), refused.join('\n'));
  });

  it('plan-job may send to every model’s jobs and bulk queues', async () => {
    const sends = of('plan-job');
    assert.deepEqual(await refusedFor(principals.planJob, [...sends, ...sends.map(renamed)]), []);
  });

  it('a model’s workers are refused the other model’s queues', async () => {
    const queue = (local: string) => twoResolved.queueArn(local);
    const denied: [Principal, string, string][] = [
      [principals.secondClassify, 'sqs:ReceiveMessage', queue(RESOURCE_NAMES.jobsQueue)],
      [principals.firstClassify, 'sqs:ReceiveMessage', queue('labeler-second-jobs')],
      [principals.secondGpu, 'sqs:ReceiveMessage', queue(RESOURCE_NAMES.bulkQueue)],
      [principals.planJob, 'sqs:ReceiveMessage', queue('labeler-second-bulk')],
    ];
    const allowed: string[] = [];
    for (const [who, action, resource] of denied) {
      const result = await evaluate(who, { action, resource }, twoResolved);
      if (result === 'Allowed' || result.startsWith('error'))
        allowed.push(`${who.name} ${action} on ${resource}`);
    }
    assert.deepEqual(allowed, []);
  });
});
