import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import { buildApp } from 'fauxqs';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../../shared/paths.ts';
import { ENV } from '../../shared/settings.ts';
import { closeOf, startGpuWorker } from '../helpers/gpu-worker.ts';
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

  it('exits non-zero at start-up, logging the code the no-CUDA alarm filters on', async () => {
    const { child, lines } = startGpuWorker(address, queueUrl);
    const { code } = await closeOf(child);
    assert.equal(code, 1);
    const failure = lines().find((l) => (l as { message?: string }).message === 'gpu worker cannot start') as
      | Record<string, unknown>
      | undefined;
    assert.ok(failure, 'the start-up failure is logged as JSON');
    assert.equal(failure.code, 'model/provider-unavailable');
    assert.equal(failure.level, 'ERROR');
  });

  it('with ALLOW_CPU_FALLBACK=true runs on the CPU, says so in its log and metric, and drains on SIGTERM', async () => {
    const { child, lines, output } = startGpuWorker(address, queueUrl, { [ENV.allowCpuFallback]: 'true' });
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

      const exited = closeOf(child);
      child.kill('SIGTERM');
      assert.equal((await exited).code, 0, output());
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('started by a local stack that is gone (LABELER_LOCAL_STACK_PID is not its parent), kills itself', {
    timeout: 180_000,
  }, async () => {
    // The kill -9 of `local up` in cli-local-up-lifecycle is the real case; here the "stack"
    // is a pid that is not this worker's parent, which is what the worker sees once re-parented.
    const { child, lines } = startGpuWorker(address, queueUrl, {
      [ENV.allowCpuFallback]: 'true',
      [ENV.localStackPid]: '1',
    });
    const { signal } = await closeOf(child);
    assert.equal(signal, 'SIGKILL');
    assert.ok(
      lines().some((l) => String(l.message).startsWith('the local stack that started this worker is gone')),
    );
  });
});
