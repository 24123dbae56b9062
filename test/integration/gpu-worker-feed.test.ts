import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import { buildApp } from 'fauxqs';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { ENV, GPU_WORKER } from '../../shared/settings.ts';
import { type LogLine, startGpuWorker } from '../helpers/gpu-worker.ts';
import { waitFor } from '../helpers/wait.ts';

// What the GPU worker says about how it feeds the model: how many threads decode (libuv's
// pool, sized only where the process is launched) and how many batches it keeps in flight.

type Line = LogLine;

describe('the GPU worker feeding its model', () => {
  let app: ReturnType<typeof buildApp>;
  let address: string;
  let clients: AwsClients;
  let queueUrl: string;

  before(async () => {
    app = buildApp({ logger: false });
    address = await app.listen({ port: 0, host: '127.0.0.1' });
    clients = createAwsClients({ region: 'us-east-1', endpoints: { sqs: address }, local: true });
    const created = await clients.sqs.send(new CreateQueueCommand({ QueueName: 'gpu-feed' }));
    queueUrl = created.QueueUrl ?? '';
  });
  after(async () => {
    clients?.sqs.destroy();
    await app?.close();
  });

  /** Starts the worker on the CPU, waits for 'gpu worker ready', then stops it with SIGTERM. */
  async function readyLines(extra: Record<string, string>): Promise<Line[]> {
    const { child, lines } = startGpuWorker(address, queueUrl, {
      [ENV.executionProviders]: 'cpu',
      [ENV.allowCpuFallback]: 'true',
      [ENV.intraOpThreads]: '1',
      ...extra,
    });
    try {
      await waitFor(
        'the worker is ready',
        () => lines().find((l) => l.message === 'gpu worker ready'),
        120_000,
      );
      const closed = new Promise((resolve) => child.once('close', resolve));
      child.kill('SIGTERM');
      await closed;
      return lines();
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }

  it(`keeps ${GPU_WORKER.batchesInFlight} batches in flight and decodes on the pool it was started with`, async () => {
    const pool = String(availableParallelism());
    const lines = await readyLines({ [ENV.uvThreadpoolSize]: pool });
    const ready = lines.find((l) => l.message === 'gpu worker ready') as Line;
    assert.ok(GPU_WORKER.batchesInFlight >= 2, 'decoding batch n+1 needs a second batch in flight');
    assert.equal(ready.batchesInFlight, GPU_WORKER.batchesInFlight);
    assert.equal(ready.decodeThreads, Number(pool));
    assert.equal(ready.cores, availableParallelism());
    assert.equal(
      lines.find((l) => String(l.message).startsWith('decode runs on fewer threads')),
      undefined,
      'no warning with a pool of one thread per core',
    );
  });

  it('warns when started with fewer decode threads than cores, naming UV_THREADPOOL_SIZE', async () => {
    const lines = await readyLines({ [ENV.uvThreadpoolSize]: '1' });
    const warning = lines.find((l) => String(l.message).startsWith('decode runs on fewer threads'));
    if (availableParallelism() < 2) {
      assert.equal(warning, undefined);
      return;
    }
    assert.ok(warning, 'a warning');
    assert.equal(warning.level, 'WARN');
    assert.match(String(warning.message), /UV_THREADPOOL_SIZE/);
    assert.equal(warning.decodeThreads, 1);
    assert.equal(warning.cores, availableParallelism());
  });
});
