import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../../shared/paths.ts';
import { modelQueueNames, RESOURCE_NAMES } from '../../shared/settings.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { LabelerProcess, waitForEndpoints } from '../helpers/labeler-process.ts';

const SAMPLES = join(PACKAGE_ROOT, 'models', 'fashion-efficientnet', 'samples');
const COUNT = 24;
const GENEROUS_MS = 600_000;
const CANDIDATE = { id: 'candidate-model', version: '2.0.0' };

/**
 * `labeler local up --gpu-worker` runs the GPU worker's entry point (CPU provider) on the
 * bulk queue, so a job with `--target gpu` runs to the end on one machine; with two
 * models, one worker per model on its own bulk queue.
 */
describe('labeler jobs start --target gpu on local up', () => {
  let dataDir: string;
  let up: LabelerProcess;
  let clients: AwsClients;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-jobs-gpu-'));
    // A second hosted model (a copy under another id): each model has its own GPU worker.
    const candidateDir = join(dataDir, 'candidate');
    await cp(DEFAULT_MODEL_DIR, candidateDir, { recursive: true });
    const manifestPath = join(candidateDir, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    await writeFile(manifestPath, JSON.stringify({ ...manifest, ...CANDIDATE }));
    up = new LabelerProcess(
      ['local', 'up', '--data-dir', dataDir, '--gpu-worker', '--model', 'fashion', '--model', candidateDir],
      { ownProcessGroup: true },
    );
    const endpoints = await waitForEndpoints(dataDir, up);
    clients = createAwsClients({ region: endpoints.region, endpoints: endpoints.endpoints, local: true });
    const samples = (await readdir(SAMPLES)).filter((f) => f.endsWith('.png')).sort();
    for (let i = 0; i < COUNT; i++) {
      const name = samples[i % samples.length] as string;
      await clients.s3.send(
        new PutObjectCommand({
          Bucket: RESOURCE_NAMES.imagesBucket,
          Key: `datasets/gpu/${String(i).padStart(3, '0')}-${name}`,
          Body: await readFile(join(SAMPLES, name)),
        }),
      );
    }
  });
  after(async () => {
    clients?.s3.destroy();
    clients?.sqs.destroy();
    clients?.dynamo.destroy();
    up?.kill('SIGINT');
    await up?.exited;
    await rm(dataDir, { recursive: true, force: true });
  });

  it(`jobs start --target gpu --wait labels ${COUNT} images through the GPU worker`, {
    timeout: GENEROUS_MS,
  }, async () => {
    const run = await runCli([
      'jobs',
      'start',
      '--prefix',
      'datasets/gpu/',
      '--target',
      'gpu',
      '--mode',
      'all',
      '--wait',
      // A bulk queue nobody consumes would wait for ever: fail with the output instead.
      '--timeout',
      '480',
      '--format',
      'json',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(run.code, 0, `${run.stderr}\n--- local up:\n${up.stderr}`);
    const [, last] = jsonLines(run.stdout);
    assert.equal(last?.status, 'succeeded');
    assert.equal(last?.target, 'gpu');
    assert.equal(last?.total, COUNT);
    assert.equal(last?.labeled, COUNT);
    // The worker's structured log: it started on the CPU provider and took the batches.
    assert.match(up.stderr, /"message":"gpu worker ready".*"executionProvider":"cpu"/);
  });

  it('jobs start --model candidate --target gpu labels with the candidate’s own GPU worker', {
    timeout: GENEROUS_MS,
  }, async () => {
    const run = await runCli([
      'jobs',
      'start',
      '--prefix',
      'datasets/gpu/',
      '--model',
      'candidate',
      '--target',
      'gpu',
      '--mode',
      'all',
      '--wait',
      '--timeout',
      '480',
      '--format',
      'json',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(run.code, 0, `${run.stderr}\n--- local up:\n${up.stderr}`);
    const last = jsonLines(run.stdout).at(-1);
    assert.deepEqual(
      [last?.status, last?.target, last?.labeled, last?.model],
      ['succeeded', 'gpu', COUNT, `${CANDIDATE.id}@${CANDIDATE.version}`],
    );
    const results = await runCli(['query', 'job', String(last?.jobId), '--data-dir', dataDir]);
    assert.equal(results.code, 0, results.stderr);
    const rows = jsonLines(results.stdout);
    assert.equal(rows.length, COUNT);
    assert.ok(
      rows.every((r) => r.model === CANDIDATE.id && r.modelVersion === CANDIDATE.version),
      'every result carries the candidate’s id@version',
    );
    // Its worker is a process of its own, on the candidate's bulk queue.
    assert.match(
      up.stderr,
      new RegExp(
        `"message":"gpu worker ready".*"queueUrl":"[^"]*/${modelQueueNames('candidate', false).bulkQueue}"`,
      ),
    );
  });

  it('auto stays on Lambda: the local GPU worker runs on the CPU; the reason on stderr', async () => {
    const run = await runCli([
      'jobs',
      'start',
      '--prefix',
      'datasets/gpu/',
      '--format',
      'json',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(
      run.stderr.includes(
        "target lambda (auto): fashion-efficientnet: the local stack's GPU worker runs on the CPU, with no GPU to gain from (--target gpu still uses it)",
      ),
      run.stderr,
    );
    assert.equal(jsonLines(run.stdout)[0]?.target, 'lambda');
  });

  it('stopping local up (Ctrl-C) stops the GPU worker with it', { timeout: GENEROUS_MS }, async () => {
    // As a terminal sends it, to the whole process group: the stack stops its children in
    // order, and none of them dies of the signal first (and gets replaced, or reported).
    up.pressCtrlC();
    // close waits for every holder of its stderr, the GPU worker included.
    assert.equal(await up.exited, 0, up.output);
    assert.doesNotMatch(up.stderr, /the GPU worker process exited/);
    assert.doesNotMatch(up.stderr, /execution environment|dynamodb-exited/, up.stderr);
  });
});
