// `labeler jobs start` with the default `--target auto` against a real local stack: the
// local stack has no GPU (its GPU worker runs on the CPU), so the cost model says Lambda,
// and the job records why: not "no GPU workers", since `local up` runs one.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createAwsClients } from '../../shared/aws/clients.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { LabelerProcess, waitForEndpoints } from '../helpers/labeler-process.ts';

describe('labeler jobs start --target auto (local stack)', () => {
  let dataDir: string;
  let up: LabelerProcess;
  const jobs = (...args: string[]) => runCli(['jobs', ...args, '--data-dir', dataDir]);

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-auto-'));
    up = new LabelerProcess(['local', 'up', '--data-dir', dataDir]);
    const running = await waitForEndpoints(dataDir, up);
    // A prefix with no objects is refused (job/no-objects): the job needs one object.
    const clients = createAwsClients({ region: running.region, endpoints: running.endpoints, local: true });
    await clients.s3.send(
      new PutObjectCommand({ Bucket: 'labeler-images', Key: 'auto-target/one.png', Body: Buffer.from('x') }),
    );
    clients.s3.destroy();
    clients.sqs.destroy();
    clients.dynamo.destroy();
  });
  after(async () => {
    up?.kill('SIGINT');
    await up?.exited;
    await rm(dataDir, { recursive: true, force: true });
  });

  it('defaults to auto: Lambda, since local up runs no GPU worker unless asked; the reason on stderr and in the job', async () => {
    const run = await jobs('start', '--prefix', 'auto-target/', '--format', 'json');
    assert.equal(run.code, 0, run.stderr);
    const reason = 'fashion-efficientnet: the stack has no GPU workers';
    assert.ok(run.stderr.includes(`target lambda (auto): ${reason}`), run.stderr);
    const [started] = jsonLines(run.stdout);
    assert.equal(started?.target, 'lambda');
    assert.equal(started?.targetReason, reason);
    const status = await jobs('status', String(started?.jobId));
    assert.ok(status.stdout.includes(`why       ${reason}`), status.stdout);
  });

  it('an explicit target is used as given, with no reason', async () => {
    const run = await jobs('start', '--prefix', 'auto-target/', '--target', 'lambda', '--format', 'json');
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stderr, /\(auto\)/);
    const [started] = jsonLines(run.stdout);
    assert.equal(started?.target, 'lambda');
    assert.equal('targetReason' in (started ?? {}), false);
  });

  it('--target gpu without a GPU worker (local up without --gpu-worker) is refused, and no job is made', async () => {
    const before = jsonLines((await jobs('list', '--format', 'json')).stdout).length;
    const run = await jobs('start', '--prefix', 'auto-target/', '--target', 'gpu');
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /\[job\/no-gpu-worker\].*local up --gpu-worker/);
    assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    assert.equal(jsonLines((await jobs('list', '--format', 'json')).stdout).length, before);
  });
});
