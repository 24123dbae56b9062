import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import sharp from 'sharp';
import { freePort } from '../../local/dynamodb-local.ts';
import { findRunningStack, lockDataDir, writeEndpoints } from '../../local/endpoints.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { UPLOAD_PART_BYTES, uploadFiles } from '../../shared/aws/upload.ts';
import { LabelerError } from '../../shared/errors.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { IMAGE_LIMITS, UPLOAD_FILTER } from '../../shared/settings.ts';
import { waitFor } from '../helpers/wait.ts';

/** A pid that certainly belongs to no process: one that has just exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

describe('uploads to the local stack (fauxqs)', () => {
  let stack: LocalStack;
  let dir: string;

  before(async () => {
    stack = await startLocalStack({ worker: false });
    dir = await mkdtemp(join(tmpdir(), 'labeler-upload-'));
  });
  after(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('uploads a file over the emulator 11 MiB request limit as multipart; the S3 event carries its "<md5>-<parts>" eTag', async () => {
    const width = 2600;
    const height = 2000;
    const big = await sharp(randomBytes(width * height * 3), { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 100, chromaSubsampling: '4:4:4' })
      .toBuffer();
    assert.ok(big.length > 11 * 1024 * 1024, `the test JPEG has ${big.length} bytes`);
    const bigFile = join(dir, 'big.jpg');
    const smallFile = join(dir, 'small.png');
    await writeFile(bigFile, big);
    await writeFile(smallFile, await readFile(join(DEFAULT_MODEL_DIR, 'samples', 'test-00000.png')));

    const outcomes = await uploadFiles(
      stack.clients.s3,
      {
        bucket: stack.names.imagesBucket,
        prefix: UPLOAD_FILTER.prefix,
        root: dir,
        maxBytes: IMAGE_LIMITS.maxBytes,
      },
      [bigFile, smallFile],
    );

    const [bigOutcome, smallOutcome] = outcomes;
    assert.equal(bigOutcome?.status, 'uploaded', JSON.stringify(bigOutcome));
    assert.equal(smallOutcome?.status, 'uploaded', JSON.stringify(smallOutcome));
    const parts = Math.ceil(big.length / UPLOAD_PART_BYTES);
    const bigETag = bigOutcome?.status === 'uploaded' ? bigOutcome.eTag : '';
    assert.match(bigETag, new RegExp(`^[0-9a-f]{32}-${parts}$`));
    const head = await stack.clients.s3.send(
      new HeadObjectCommand({ Bucket: stack.names.imagesBucket, Key: `${UPLOAD_FILTER.prefix}big.jpg` }),
    );
    assert.equal(head.ContentLength, big.length);

    await stack.notifier.flush();
    const events = new Map<string, { key: string; eTag: string; eventName: string; size: number }>();
    await waitFor(
      'both S3 events',
      async () => {
        const { Messages = [] } = await stack.clients.sqs.send(
          new ReceiveMessageCommand({ QueueUrl: stack.queues.incoming.url, MaxNumberOfMessages: 10 }),
        );
        for (const m of Messages) {
          const body = JSON.parse(m.Body ?? '{}') as {
            Records?: Array<{
              eventName: string;
              s3: { object: { key: string; eTag: string; size: number } };
            }>;
          };
          for (const r of body.Records ?? []) {
            const { key, eTag, size } = r.s3.object;
            events.set(decodeURIComponent(key), { key, eTag, size, eventName: r.eventName });
          }
          await stack.clients.sqs.send(
            new DeleteMessageCommand({ QueueUrl: stack.queues.incoming.url, ReceiptHandle: m.ReceiptHandle }),
          );
        }
        return events.size >= 2 ? events : undefined;
      },
      60_000,
    );
    assert.deepEqual(events.get(`${UPLOAD_FILTER.prefix}big.jpg`), {
      key: `${UPLOAD_FILTER.prefix}big.jpg`,
      eTag: bigETag,
      size: big.length,
      eventName: 'ObjectCreated:CompleteMultipartUpload',
    });
    assert.equal(events.get(`${UPLOAD_FILTER.prefix}small.png`)?.eventName, 'ObjectCreated:Put');
  });

  it('refuses a file over maxBytes from its size without sending it, and fails a vanished file alone', async () => {
    const tooLarge = join(dir, 'too-large.bin');
    await writeFile(tooLarge, Buffer.alloc(2048, 1));
    const vanished = join(dir, 'vanished.png');
    const fine = join(dir, 'fine.png');
    await writeFile(fine, await readFile(join(DEFAULT_MODEL_DIR, 'samples', 'test-00001.png')));

    const outcomes = await uploadFiles(
      stack.clients.s3,
      { bucket: stack.names.imagesBucket, prefix: 'limits/', root: dir, maxBytes: 1024 },
      [tooLarge, vanished, fine],
    );

    assert.deepEqual(
      outcomes.map((o) => [o.key, o.status, o.status === 'failed' ? o.error.code : '']),
      [
        ['limits/too-large.bin', 'failed', 'image/too-large'],
        ['limits/vanished.png', 'failed', 'file/unreadable'],
        ['limits/fine.png', 'uploaded', ''],
      ],
    );
    await assert.rejects(
      stack.clients.s3.send(
        new HeadObjectCommand({ Bucket: stack.names.imagesBucket, Key: 'limits/too-large.bin' }),
      ),
      (error: Error) => error.name === 'NotFound',
      'the refused file was never uploaded',
    );
  });

  it('skips the files not yet started once its signal aborts', async () => {
    const file = join(dir, 'fine.png');
    const outcomes = await uploadFiles(
      stack.clients.s3,
      {
        bucket: stack.names.imagesBucket,
        prefix: 'aborted/',
        root: dir,
        maxBytes: IMAGE_LIMITS.maxBytes,
        signal: AbortSignal.abort(),
      },
      [file],
    );
    assert.deepEqual(outcomes, [{ status: 'skipped', file, key: 'aborted/fine.png' }]);
  });
});

describe('DynamoDB Local supervision', () => {
  it('settles stack.failed with local/dynamodb-exited when the JVM dies, and not on a clean stop', async () => {
    const stack = await startLocalStack({ worker: false });
    try {
      assert.ok(stack.dynamoDbPid);
      process.kill(stack.dynamoDbPid, 'SIGKILL');
      const error = await stack.failed;
      assert.ok(error instanceof LabelerError);
      assert.equal(error.code, 'local/dynamodb-exited');
      assert.match(error.message, new RegExp(`pid ${stack.dynamoDbPid}`));
    } finally {
      await stack.stop();
    }

    const clean = await startLocalStack({ worker: false });
    await clean.stop();
    const settled = await Promise.race([clean.failed.then(() => 'failed'), Promise.resolve('pending')]);
    assert.equal(settled, 'pending');
  });
});

describe('the data dir lock and endpoints.json', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-lock-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a second holder while the first lives, takes over a dead holder, releases only its own', async () => {
    const lock = await lockDataDir(dir);
    await writeFile(join(dir, 'lock'), `${process.ppid}\n`);
    await assert.rejects(lockDataDir(dir), (e: LabelerError) => e.code === 'local/already-running');
    await lock.release();
    assert.equal(
      (await readFile(join(dir, 'lock'), 'utf8')).trim(),
      String(process.ppid),
      'not ours to remove',
    );

    await writeFile(join(dir, 'lock'), `${deadPid()}\n`);
    const taken = await lockDataDir(dir);
    assert.equal((await readFile(join(dir, 'lock'), 'utf8')).trim(), String(process.pid));
    await taken.release();
    await assert.rejects(readFile(join(dir, 'lock')));
  });

  it('reports a stale endpoints.json as local/not-running: a dead pid, or a DynamoDB port refusing connections', async () => {
    const refused = `http://127.0.0.1:${await freePort()}`;
    const endpoints = { s3: refused, sqs: refused, dynamodb: refused };
    await writeEndpoints(dir, { region: 'us-east-1', endpoints, names: {}, pid: deadPid() });
    await assert.rejects(
      findRunningStack(dir),
      (e: LabelerError) => e.code === 'local/not-running' && /has exited/.test(e.message),
    );

    await writeEndpoints(dir, { region: 'us-east-1', endpoints, names: {}, pid: process.pid });
    await assert.rejects(
      findRunningStack(dir),
      (e: LabelerError) => e.code === 'local/not-running' && /refuses connections/.test(e.message),
    );

    await rm(join(dir, 'endpoints.json'));
    await assert.rejects(
      findRunningStack(dir),
      (e: LabelerError) => e.code === 'local/not-running' && /labeler local up/.test(e.message),
    );
  });
});
