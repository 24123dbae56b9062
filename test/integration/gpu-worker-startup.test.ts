import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import { buildApp } from 'fauxqs';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../../shared/paths.ts';
import { ENV } from '../../shared/settings.ts';
import { waitFor } from '../helpers/wait.ts';

// This machine has no CUDA: asking for it is exactly the GPU worker whose GPU is missing.
// Each case runs in a child process so whatever onnxruntime prints stays captured here.

describe('Classifier with a required execution provider', () => {
  it('refuses to fall back to the CPU: ModelError model/provider-unavailable', () => {
    const url = (file: string) => JSON.stringify(pathToFileURL(join(PACKAGE_ROOT, file)).href);
    const script = `
      import { Classifier } from ${url('shared/model/classifier.ts')};
      import { loadModelBundle } from ${url('shared/model/manifest.ts')};
      const bundle = await loadModelBundle(${JSON.stringify(DEFAULT_MODEL_DIR)});
      try {
        await Classifier.create(bundle, { executionProviders: ['cuda'], requireProvider: true, intraOpThreads: 1 });
        console.log(JSON.stringify({ started: true }));
      } catch (error) {
        console.log(JSON.stringify({ name: error.name, code: error.code, message: error.message }));
      }`;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: PACKAGE_ROOT,
      encoding: 'utf8',
      env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
      timeout: 120_000,
    });
    assert.equal(run.status, 0, run.stderr);
    const outcome = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}');
    assert.equal(outcome.name, 'ModelError');
    assert.equal(outcome.code, 'model/provider-unavailable');
    assert.match(outcome.message, /cuda/);
  });
});

describe('the GPU worker entry point without CUDA', () => {
  let app: ReturnType<typeof buildApp>;
  let address: string;
  let clients: AwsClients;
  let queueUrl: string;

  before(async () => {
    app = buildApp({ logger: false });
    address = await app.listen({ port: 0, host: '127.0.0.1' });
    clients = createAwsClients({ region: 'us-east-1', endpoints: { sqs: address }, local: true });
    const created = await clients.sqs.send(new CreateQueueCommand({ QueueName: 'gpu-bulk' }));
    queueUrl = created.QueueUrl ?? '';
  });
  after(async () => {
    clients?.sqs.destroy();
    await app?.close();
  });

  function startWorker(extra: Record<string, string>): {
    child: ChildProcess;
    lines: () => unknown[];
    output: () => string;
  } {
    const child = spawn(process.execPath, ['--import', 'tsx', 'functions/gpu-worker/main.ts'], {
      cwd: PACKAGE_ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        [ENV.region]: 'us-east-1',
        [ENV.resultsTable]: 'results',
        [ENV.resultsBucket]: 'results',
        [ENV.modelDir]: DEFAULT_MODEL_DIR,
        [ENV.executionProviders]: 'cuda',
        [ENV.bulkQueueUrl]: queueUrl,
        [ENV.bulkQueueArn]: 'arn:aws:sqs:us-east-1:000000000000:gpu-bulk',
        [ENV.serviceName]: 'labeler-gpu-worker',
        [ENV.ortDisableTelemetry]: '1',
        AWS_ENDPOINT_URL_SQS: address,
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
        ...extra,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Powertools writes errors to stderr and the rest to stdout; ECS sends both to the log group.
    let output = '';
    const collect = (chunk: unknown) => {
      output += String(chunk);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const lines = () =>
      output
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as unknown);
    return { child, lines, output: () => output };
  }

  // 'close' comes after the output streams end, so every line the child wrote has arrived.
  function exitOf(child: ChildProcess): Promise<number | null> {
    return new Promise((resolve) => {
      if (child.exitCode !== null && child.stdout?.readableEnded) resolve(child.exitCode);
      else child.once('close', (code) => resolve(code));
    });
  }

  it('exits non-zero at start-up, logging the code the no-CUDA alarm filters on', async () => {
    const { child, lines } = startWorker({});
    const code = await exitOf(child);
    assert.equal(code, 1);
    const failure = lines().find((l) => (l as { message?: string }).message === 'gpu worker cannot start') as
      | Record<string, unknown>
      | undefined;
    assert.ok(failure, 'the start-up failure is logged as JSON');
    assert.equal(failure.code, 'model/provider-unavailable');
    assert.equal(failure.level, 'ERROR');
  });

  it('with ALLOW_CPU_FALLBACK=true runs on the CPU, says so in its log and metric, and drains on SIGTERM', async () => {
    const { child, lines, output } = startWorker({ [ENV.allowCpuFallback]: 'true' });
    try {
      const ready = (await waitFor(
        'the worker is ready',
        () => lines().find((l) => (l as { message?: string }).message === 'gpu worker ready'),
        120_000,
      )) as Record<string, unknown>;
      assert.equal(ready.executionProvider, 'cpu');
      assert.equal(ready.allowCpuFallback, true);
      const metric = lines().find((l) => '_aws' in (l as object)) as Record<string, unknown> | undefined;
      assert.ok(metric, 'an EMF metric line');
      assert.equal(metric.ExecutionProvider, 'cpu');
      assert.equal(metric.WorkerStarted, 1);

      const exited = exitOf(child);
      child.kill('SIGTERM');
      assert.equal(await exited, 0, output());
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
