import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../../shared/paths.ts';
import { runCli } from '../helpers/cli.ts';
import {
  alive,
  childPids,
  LabelerProcess,
  readEndpointsFile,
  waitForEndpoints,
} from '../helpers/labeler-process.ts';
import { waitFor } from '../helpers/wait.ts';

const UP = /local stack is up/;

/** Runs a script with only the environment `local up` printed (plus PATH): what a user's shell has. */
function withPrintedEnvironment(
  printout: string,
  script: string,
): Promise<{ code: number | null; output: string }> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: tmpdir() };
  for (const line of printout.split('\n')) {
    if (!line.startsWith('export ')) continue;
    for (const pair of line.slice('export '.length).trim().split(/\s+/)) {
      const [name, ...value] = pair.split('=');
      if (name) env[name] = value.join('=');
    }
  }
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: PACKAGE_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** Alive and not a zombie: an orphan that exited may wait to be reaped by whoever adopted it. */
function running(pid: number): boolean {
  if (!alive(pid)) return false;
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** A regression that hangs (a second stack that never exits) fails instead of stalling the run. */
const GENEROUS_MS = 600_000;

describe('labeler local up: lifecycle of the stack and its data dir', () => {
  let dataDir: string;
  const started: LabelerProcess[] = [];
  const up = async (...extra: string[]) => {
    const p = new LabelerProcess(['local', 'up', '--data-dir', dataDir, ...extra]);
    started.push(p);
    // Boot loads the model in the classify environments (and the GPU worker) at once: on
    // two busy cores that took over two minutes, so the deadline is generous.
    await p.waitForOutput(UP, GENEROUS_MS / 2);
    await waitForEndpoints(dataDir, p);
    return p;
  };

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-lifecycle-'));
  });
  after(async () => {
    for (const p of started) p.kill('SIGKILL');
    await Promise.all(started.map((p) => p.exited));
    await rm(dataDir, { recursive: true, force: true });
  });

  it('prints the environment a shell needs; an SDK with only that uploads, and the log names the key, not empty batches', {
    timeout: GENEROUS_MS,
  }, async () => {
    const first = await up();
    assert.match(first.stdout, /export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local/);
    assert.match(first.stdout, /AWS_REGION=us-east-1/);
    assert.match(
      first.stdout,
      /AWS_ENDPOINT_URL_S3=http:\/\/127\.0\.0\.1:\d+ AWS_ENDPOINT_URL_SQS=http:\/\/127\.0\.0\.1:\d+ AWS_ENDPOINT_URL_DYNAMODB=http:\/\/127\.0\.0\.1:\d+/,
    );
    assert.match(first.stdout, /only the JSON protocol/);

    const sample = join(DEFAULT_MODEL_DIR, 'samples', 'test-00000.png');
    const client = await withPrintedEnvironment(
      first.stdout,
      `import { readFileSync } from 'node:fs';
       import { S3Client, PutObjectCommand } from '@aws-sdk/client-s3';
       import { SQSClient, ListQueuesCommand } from '@aws-sdk/client-sqs';
       const s3 = new S3Client({});
       await s3.send(new PutObjectCommand({ Bucket: 'labeler-images', Key: 'images/env/shoe.png', Body: readFileSync(${JSON.stringify(sample)}) }));
       const queues = await new SQSClient({}).send(new ListQueuesCommand({}));
       console.log('queues', queues.QueueUrls?.length);`,
    );
    assert.equal(client.code, 0, client.output);
    assert.match(client.output, /queues [1-9]/);

    const line = await first.waitForOutput(/batch: .*\n/);
    assert.match(line[0], /^batch: 1 labeled, 0 failed, 0 duplicates, 0 retried: images\/env\/shoe\.png\n$/);
    assert.doesNotMatch(first.stderr, /batch: 0 labeled/);

    first.kill('SIGINT');
    assert.equal(await first.exited, 0, first.output);
    assert.match(first.stderr, /stopping: (no messages|\d+ messages) pending in the incoming queue/);
  });

  it('refuses a second local up on the same data dir while the first runs, and leaves its endpoints.json', {
    timeout: GENEROUS_MS,
  }, async () => {
    const first = await up();
    const before = await readEndpointsFile(dataDir);

    const second = await runCli(['local', 'up', '--data-dir', dataDir]);

    assert.equal(second.code, 1, second.stderr);
    assert.match(second.stderr, /\[local\/already-running\] a local stack \(pid \d+\) is already running/);
    assert.deepEqual(await readEndpointsFile(dataDir), before);
    const query = await runCli(['query', 'image', 'images/none.png', '--data-dir', dataDir]);
    assert.equal(query.code, 0, query.stderr);

    first.kill('SIGINT');
    assert.equal(await first.exited, 0, first.output);
  });

  it('after kill -9: the JVM and the node workers exit by themselves, query says local/not-running, and a new local up takes the dir over', {
    timeout: GENEROUS_MS,
  }, async () => {
    // With the GPU worker too: every child of the stack must go with it.
    const killed = await up('--gpu-worker');
    const stale = await readEndpointsFile(dataDir);
    assert.ok(alive(stale.dynamoDbPid));
    // The classify execution environments and the GPU worker on the bulk queue.
    const workers = await childPids(killed.child.pid ?? 0, 'node');
    const commands = await Promise.all(
      workers.map((pid) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')),
    );
    assert.ok(
      commands.some((c) => c.includes('gpu-worker/main.ts')),
      'the GPU worker serves the bulk queue',
    );
    assert.ok(
      commands.some((c) => c.includes('execution-environment')),
      'classify environments',
    );

    let leftBehind = '';
    killed.kill('SIGKILL');
    await waitFor(
      'the orphaned DynamoDB Local and node workers to exit',
      () => {
        const named = [`${stale.dynamoDbPid}: java`, ...workers.map((pid, i) => `${pid}: ${commands[i]}`)];
        const left = named.filter((_, i) => running(i === 0 ? stale.dynamoDbPid : (workers[i - 1] ?? 0)));
        if (left.length === 0) return true;
        leftBehind = left.join('; ');
        return undefined;
      },
      GENEROUS_MS / 2,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; still running: ${leftBehind}`);
    });
    // Only once no child holds its stderr open does the process close.
    await killed.exited;

    const query = await runCli(['query', 'label', 'Bag', '--data-dir', dataDir]);
    assert.equal(query.code, 1, query.stderr);
    assert.match(query.stderr, /\[local\/not-running\] the local stack in .* is not running/);
    assert.doesNotMatch(query.stderr, /aws\/timeout|ECONNREFUSED/);

    const next = await up();
    assert.match(
      next.stdout,
      /DynamoDB state from an earlier run is kept in .*S3 objects and\s+queued messages of that run are gone/s,
    );
    const fresh = await readEndpointsFile(dataDir);
    assert.equal(fresh.pid, next.child.pid);
    const ok = await runCli(['query', 'image', 'images/env/shoe.png', '--data-dir', dataDir]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /"key":"images\/env\/shoe\.png"/, 'DynamoDB state survived the kill');

    next.kill('SIGINT');
    assert.equal(await next.exited, 0, next.output);
    await assert.rejects(readFile(join(dataDir, 'endpoints.json')));
    await assert.rejects(readFile(join(dataDir, 'lock')));
  });

  it('stops with local/dynamodb-exited when the JVM dies, instead of sending every message towards the DLQ', {
    timeout: GENEROUS_MS,
  }, async () => {
    const running = await up();
    const { dynamoDbPid } = await readEndpointsFile(dataDir);

    process.kill(dynamoDbPid, 'SIGKILL');

    assert.equal(await running.exited, 1, running.output);
    assert.match(running.stderr, /\[local\/dynamodb-exited\] DynamoDB Local \(pid \d+\) exited \(SIGKILL\)/);
    await assert.rejects(readFile(join(dataDir, 'endpoints.json')));
    await assert.rejects(readFile(join(dataDir, 'lock')));
  });
});
