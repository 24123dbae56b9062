// `labeler jobs start --dry-run` against a real local stack (issue 22, item 3): it counts the
// prefix (the stale images in mode stale, after a real job labeled some), prices each target
// and starts nothing: `jobs list` is the same before and after.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { solidImage } from '../helpers/images.ts';
import { LabelerProcess, waitForEndpoints } from '../helpers/labeler-process.ts';

describe('labeler jobs start --dry-run (local stack)', () => {
  let dataDir: string;
  let up: LabelerProcess;
  let clients: AwsClients;
  const jobs = (...args: string[]) => runCli(['jobs', ...args, '--data-dir', dataDir]);
  const put = async (key: string, colour: string) =>
    clients.s3.send(
      new PutObjectCommand({
        Bucket: 'labeler-images',
        Key: key,
        Body: await solidImage(64, 64, colour).png().toBuffer(),
      }),
    );
  const listed = async () => {
    const run = await jobs('list', '--format', 'json');
    assert.equal(run.code, 0, run.stderr);
    return jsonLines(run.stdout);
  };

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-dry-run-'));
    up = new LabelerProcess(['local', 'up', '--data-dir', dataDir]);
    const running = await waitForEndpoints(dataDir, up);
    clients = createAwsClients({ region: running.region, endpoints: running.endpoints, local: true });
    await put('dry-run/a.png', '#102030');
    await put('dry-run/b.png', '#405060');
  });
  after(async () => {
    clients?.s3.destroy();
    clients?.sqs.destroy();
    clients?.dynamo.destroy();
    up?.kill('SIGINT');
    await up?.exited;
    await rm(dataDir, { recursive: true, force: true });
  });

  it('prints the count, each target and auto, as JSON, and starts nothing', async () => {
    const before = await listed();
    const run = await jobs('start', '--prefix', 'dry-run/', '--mode', 'all', '--dry-run', '--format', 'json');
    assert.equal(run.code, 0, run.stderr);
    const [estimate, ...rest] = jsonLines(run.stdout);
    assert.equal(rest.length, 0, 'one JSON object');
    assert.equal(estimate?.dryRun, true);
    assert.equal(estimate?.objects, 2);
    assert.equal(estimate?.images, 2);
    assert.equal(estimate?.complete, true);
    // The local stack's GPU worker runs on the CPU: only Lambda is priced, and auto says why.
    const targets = estimate?.targets as Array<Record<string, Record<string, number>>>;
    assert.deepEqual(
      targets.map((t) => t.target),
      ['lambda'],
    );
    const dollars = targets[0]?.dollars ?? {};
    assert.ok((dollars.total ?? 0) > 0 && (dollars.dynamodb ?? 0) > 0 && (dollars.compute ?? 0) > 0);
    assert.ok((targets[0]?.configured?.seconds ?? 0) > 0);
    assert.ok((targets[0]?.defaultQuotas?.workers ?? 0) > (targets[0]?.configured?.workers ?? 0));
    assert.equal((estimate?.auto as { target?: string } | undefined)?.target, 'lambda');
    assert.deepEqual(await listed(), before, 'jobs list unchanged');
  });

  it('text: the same in words; mode stale counts only what a job would label', async () => {
    const job = await jobs(
      'start',
      '--prefix',
      'dry-run/',
      '--target',
      'lambda',
      '--wait',
      '--timeout',
      '300',
    );
    assert.equal(job.code, 0, job.stderr);
    await put('dry-run/c.png', '#708090');
    const before = await listed();

    const stale = await jobs('start', '--prefix', 'dry-run/', '--dry-run');
    assert.equal(stale.code, 0, stale.stderr);
    assert.match(stale.stdout, /^dry run: nothing started$/m);
    assert.match(stale.stdout, /^images {4}1 to label \(mode stale\) of 3 objects$/m);
    assert.match(stale.stdout, /^lambda: \$[\d.]+ all in, \$[\d.]+ per 1,000 images$/m);
    assert.match(
      stale.stdout,
      /compute \$[\d.]+, DynamoDB \$[\d.]+, S3 \$[\d.]+, SQS \$[\d.]+, logs \$[\d.]+/,
    );
    assert.match(stale.stdout, /as configured \(\d+ executions, \d+ images\/s, bound by \w+\)/);
    assert.match(stale.stdout, /at the account's default quotas \(\d+ executions/);
    assert.match(stale.stdout, /^auto {6}lambda: /m);

    const all = await jobs('start', '--prefix', 'dry-run/', '--mode', 'all', '--dry-run', '--format', 'json');
    assert.equal(jsonLines(all.stdout)[0]?.images, 3);
    assert.deepEqual(await listed(), before, 'jobs list unchanged');
  });

  it('refuses --dry-run with --wait, and still refuses an empty prefix', async () => {
    const both = await jobs('start', '--prefix', 'dry-run/', '--dry-run', '--wait');
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--dry-run starts no job to wait for/);
    const empty = await jobs('start', '--prefix', 'dry-runs-typo/', '--dry-run');
    assert.notEqual(empty.code, 0);
    assert.match(empty.stderr, /job\/no-objects/);
  });
});
