import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { writeEndpoints } from '../../local/endpoints.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { countRecentResults } from '../../shared/aws/stack-status.ts';
import { CONTENT_SHA256_METADATA, UPLOAD_PART_BYTES } from '../../shared/aws/upload.ts';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../../shared/paths.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { CountingProxy } from '../helpers/counting-proxy.ts';
import { LabelerProcess } from '../helpers/labeler-process.ts';
import { waitFor } from '../helpers/wait.ts';

/** A regression that hangs fails instead of stalling the run. */
const GENEROUS = { timeout: 600_000 };
const THOUSAND = 1000;

/**
 * `labeler upload` and `labeler status` against a local stack found the way a user's
 * `local up` is found (endpoints.json in a data dir, through openStack), with the S3
 * endpoint behind a counting proxy so the tests see every PUT the CLI sends.
 */
describe('labeler upload and labeler status against a stack', () => {
  let stack: LocalStack;
  let proxy: CountingProxy;
  let dir: string;
  let dataDir: string;
  let thousand: string;
  const where = () => ['--data-dir', dataDir];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-upload-'));
    dataDir = join(dir, 'state');
    await mkdir(dataDir);
    stack = await startLocalStack({});
    proxy = await CountingProxy.start(stack.endpoints.s3);
    await writeEndpoints(dataDir, {
      region: stack.region,
      endpoints: { s3: proxy.url, sqs: stack.endpoints.sqs, dynamodb: stack.endpoints.dynamodb },
      names: stack.names,
      pid: process.pid,
    });
    // 1,000 distinct small PNGs in 10 folders.
    thousand = join(dir, 'thousand');
    for (let folder = 0; folder < 10; folder++)
      await mkdir(join(thousand, `f${folder}`), { recursive: true });
    for (let i = 0; i < THOUSAND; i++) {
      const png = await sharp(randomBytes(8 * 8 * 3), { raw: { width: 8, height: 8, channels: 3 } })
        .png()
        .toBuffer();
      await writeFile(join(thousand, `f${i % 10}`, `img-${String(i).padStart(4, '0')}.png`), png);
    }
  });
  after(async () => {
    await proxy?.close();
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const listKeys = async (prefix: string) => {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await stack.clients.s3.send(
        new ListObjectsV2Command({
          Bucket: stack.names.imagesBucket,
          Prefix: prefix,
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
      keys.push(...(page.Contents ?? []).map((o) => o.Key ?? ''));
      token = page.NextContinuationToken;
    } while (token);
    return keys.sort();
  };

  it(
    'uploads 1,000 images with one PUT each, and a second run sends none of them again',
    GENEROUS,
    async () => {
      const first = await runCli(['upload', thousand, '--prefix', 'datasets/thousand', ...where()]);

      assert.equal(first.code, 0, first.stderr);
      const rows = jsonLines(first.stdout);
      assert.equal(rows.length, THOUSAND);
      assert.deepEqual(new Set(rows.map((r) => r.status)), new Set(['uploaded']));
      assert.equal(rows[0]?.key, 'datasets/thousand/f0/img-0000.png', 'keys keep the path below the folder');
      assert.match(first.stderr, /not labeled on arrival.*labeler jobs start --prefix datasets\/thousand\//);
      const puts = proxy.putObjects(`${stack.names.imagesBucket}/datasets/thousand/`);
      assert.equal(puts.size, THOUSAND);
      assert.ok([...puts.values()].every((n) => n === 1));
      assert.equal((await listKeys('datasets/thousand/')).length, THOUSAND);

      const second = await runCli(['upload', thousand, '--prefix', 'datasets/thousand/', ...where()]);

      assert.equal(second.code, 0, second.stderr);
      assert.deepEqual(new Set(jsonLines(second.stdout).map((r) => r.status)), new Set(['present']));
      const again = proxy.putObjects(`${stack.names.imagesBucket}/datasets/thousand/`);
      assert.equal(
        [...again.values()].reduce((a, b) => a + b, 0),
        THOUSAND,
        'no PUT on the second run',
      );
      assert.match(second.stderr, /0 uploaded, 1000 already present/);
    },
  );

  it('resumes an upload killed mid-way without sending the finished files again', GENEROUS, async () => {
    const prefix = 'datasets/resume/';
    const concurrency = 4;
    const path = `${stack.names.imagesBucket}/${prefix}`;
    // The emulator's side stops answering after 300 PUTs, so the kill lands mid-upload whatever the CPU speed.
    proxy.holdPutsAfter(300);
    const killed = new LabelerProcess([
      'upload',
      thousand,
      '--prefix',
      prefix,
      '--concurrency',
      String(concurrency),
      ...where(),
    ]);
    let finished: Array<Record<string, unknown>>;
    try {
      await waitFor('the held PUTs', () => (proxy.heldCount >= concurrency ? true : undefined), 300_000);
      // Rows written so far: the files whose upload completed.
      finished = jsonLines(killed.stdout.slice(0, killed.stdout.lastIndexOf('\n') + 1));
      killed.kill('SIGKILL');
      await killed.exited;
    } finally {
      killed.kill('SIGKILL');
      proxy.release();
    }
    assert.ok(finished.length > 0 && finished.length <= 300, `${finished.length} rows before the kill`);
    assert.ok(finished.every((r) => r.status === 'uploaded'));
    const sentBefore = proxy.putObjects(path);

    const resumed = await runCli([
      'upload',
      thousand,
      '--prefix',
      prefix,
      '--concurrency',
      String(concurrency),
      ...where(),
    ]);

    assert.equal(resumed.code, 0, resumed.stderr);
    const rows = new Map(jsonLines(resumed.stdout).map((r) => [r.key, r.status]));
    assert.equal(rows.size, THOUSAND);
    const puts = proxy.putObjects(path);
    for (const row of finished) {
      assert.equal(rows.get(row.key), 'present', `${row.key} was finished before the kill`);
      assert.equal(puts.get(`${stack.names.imagesBucket}/${row.key}`), 1, `${row.key} was sent once`);
    }
    // Only the PUTs held unanswered at the kill are sent a second time.
    const total = [...puts.values()].reduce((a, b) => a + b, 0);
    const resent = [...puts.values()].filter((n) => n > 1).length;
    assert.ok(resent <= concurrency, `${resent} files sent twice`);
    assert.equal(total, THOUSAND + resent);
    assert.equal(sentBefore.size, 300 + concurrency);
    assert.equal((await listKeys(prefix)).length, THOUSAND);
  });

  it('sends a 20 MB image as a multipart upload carrying its SHA-256, and not again', GENEROUS, async () => {
    const folder = join(dir, 'large');
    await mkdir(folder);
    const side = 2600;
    const png = await sharp(randomBytes(side * side * 3), { raw: { width: side, height: side, channels: 3 } })
      .png({ compressionLevel: 0 })
      .toBuffer();
    assert.ok(png.length > 20 * 1000 * 1000, `the PNG has ${png.length} bytes`);
    await writeFile(join(folder, 'big.png'), png);
    const key = 'datasets/large/big.png';
    const parts = () =>
      proxy.count((r) => r.method === 'PUT' && r.query.has('partNumber') && r.path.endsWith(key));

    const run = await runCli(['upload', join(folder, 'big.png'), '--prefix', 'datasets/large', ...where()]);

    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(
      jsonLines(run.stdout).map((r) => [r.key, r.status, r.size]),
      [[key, 'uploaded', png.length]],
    );
    assert.equal(parts(), Math.ceil(png.length / UPLOAD_PART_BYTES));
    assert.equal(
      proxy.count((r) => r.method === 'POST' && r.query.has('uploads') && r.path.endsWith(key)),
      1,
    );
    const sha256 = createHash('sha256').update(png).digest('hex');
    const head = await stack.clients.s3.send(
      new HeadObjectCommand({ Bucket: stack.names.imagesBucket, Key: key }),
    );
    assert.equal(head.Metadata?.[CONTENT_SHA256_METADATA], sha256);
    assert.match(head.ETag ?? '', /-\d+"?$/, 'a multipart ETag, not an MD5');
    const stored = await stack.clients.s3.send(
      new GetObjectCommand({ Bucket: stack.names.imagesBucket, Key: key }),
    );
    const body = Buffer.from((await stored.Body?.transformToByteArray()) ?? []);
    assert.equal(createHash('sha256').update(body).digest('hex'), sha256);

    const again = await runCli(['upload', join(folder, 'big.png'), '--prefix', 'datasets/large', ...where()]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(jsonLines(again.stdout)[0]?.status, 'present');
    assert.equal(parts(), Math.ceil(png.length / UPLOAD_PART_BYTES), 'no part sent again');
  });

  it(
    '--wait prints every result with key and model, for keys with spaces, + and unicode; a non-image and a missing path get rows',
    GENEROUS,
    async () => {
      const folder = join(dir, 'wait');
      await mkdir(join(folder, 'ünï cødé'), { recursive: true });
      const samples = join(DEFAULT_MODEL_DIR, 'samples');
      const names = ['a b.png', 'c+d.png', 'ünï cødé/日本 ü.png'];
      for (let i = 0; i < 12; i++) {
        const name = `test-${String(i).padStart(5, '0')}.png`;
        await copyFile(join(samples, name), join(folder, name));
      }
      for (const [i, name] of names.entries()) {
        await copyFile(join(samples, `test-${String(20 + i).padStart(5, '0')}.png`), join(folder, name));
      }
      await writeFile(join(folder, 'notes.png'), 'not an image, whatever its name says\n');
      const missing = join(dir, 'missing.png');

      const run = await runCli([
        'upload',
        folder,
        missing,
        '--prefix',
        'images/wait',
        '--wait',
        '--expect',
        join(DEFAULT_MODEL_DIR, 'samples.csv'),
        ...where(),
      ]);

      assert.equal(run.code, 0, run.stderr);
      const rows = jsonLines(run.stdout);
      assert.equal(rows.length, 12 + names.length + 2, run.stdout);
      const byFile = new Map(rows.map((r) => [String(r.file), r]));
      for (const name of names) {
        const row = byFile.get(join(folder, name));
        assert.equal(row?.key, `images/wait/${name}`);
        assert.equal(row?.status, 'ok', JSON.stringify(row));
        assert.equal(row?.model, 'fashion-efficientnet');
        assert.ok(Array.isArray(row?.labels) && row.labels.length > 0);
      }
      const ok = rows.filter((r) => r.status === 'ok');
      assert.equal(ok.length, 12 + names.length);
      assert.deepEqual(
        (byFile.get(join(folder, 'notes.png'))?.error as { code?: string } | undefined)?.code,
        'image/unsupported-format',
      );
      assert.deepEqual((byFile.get(missing)?.error as { code?: string } | undefined)?.code, 'file/not-found');
      assert.match(run.stderr, /top-1 accuracy: [\d.]+ % \(\d+\/12\)/);
      assert.deepEqual(
        await listKeys('images/wait/'),
        [...names, ...Array.from({ length: 12 }, (_, i) => `test-${String(i).padStart(5, '0')}.png`)]
          .map((n) => `images/wait/${n}`)
          .sort(),
        'the exact keys, and the refused file never sent',
      );

      // Again: every object is present, nothing is sent, and the results are printed again.
      const putsBefore = proxy.count((r) => r.method === 'PUT');
      const again = await runCli(['upload', folder, '--prefix', 'images/wait', '--wait', ...where()]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(jsonLines(again.stdout).filter((r) => r.status === 'ok').length, 12 + names.length);
      assert.equal(
        proxy.count((r) => r.method === 'PUT'),
        putsBefore,
      );
    },
  );

  it(
    'status shows queue depths, the results of the last minutes and a running job with its progress',
    GENEROUS,
    async () => {
      const folder = join(dir, 'job');
      await mkdir(folder);
      for (let i = 0; i < 3; i++) {
        const name = `test-${String(i).padStart(5, '0')}.png`;
        await copyFile(join(DEFAULT_MODEL_DIR, 'samples', name), join(folder, name));
      }
      assert.equal((await runCli(['upload', folder, '--prefix', 'datasets/job', ...where()])).code, 0);
      // No GPU worker runs in this stack: a gpu job stays running with its messages in the bulk queue.
      const job = await stack.jobs.start({
        bucket: stack.names.imagesBucket,
        prefix: 'datasets/job/',
        target: 'gpu',
        mode: 'all',
      });
      await waitFor(
        'the job planned',
        async () => ((await stack.jobs.get(job.jobId))?.planningDone ? true : undefined),
        120_000,
      );

      const run = await runCli(['status', '--format', 'json', ...where()]);

      assert.equal(run.code, 0, run.stderr);
      const status = JSON.parse(run.stdout) as {
        queues: Record<string, { ok: boolean; value: { visible: number; inFlight: number } }>;
        results: { ok: boolean; value: { results: number; ok: number; estimated: boolean; batches: number } };
        jobs: { ok: boolean; value: Array<{ jobId: string; status: string; total: number; done: number }> };
      };
      assert.deepEqual(Object.keys(status.queues), [
        'incoming',
        'incomingDlq',
        'jobs',
        'jobsDlq',
        'bulk',
        'bulkDlq',
        'plan',
        'planDlq',
      ]);
      assert.ok((status.queues.bulk?.value.visible ?? 0) >= 1, JSON.stringify(status.queues.bulk));
      assert.equal(status.queues.incomingDlq?.value.visible, 0);
      assert.equal(status.results.ok, true);
      assert.ok(status.results.value.results >= 15, 'the --wait test labeled 15 images minutes ago');
      assert.equal(status.results.value.estimated, false);
      const shown = status.jobs.value.find((j) => j.jobId === job.jobId);
      assert.deepEqual([shown?.status, shown?.total, shown?.done], ['running', 3, 0]);

      const text = await runCli(['status', ...where()]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^bulk\s+[1-9]/m);
      assert.match(text.stdout, /oldest-message age: not available/);
      assert.match(text.stdout, new RegExp(`${job.jobId}\\s+running\\s+0/3 0 %`));
      await stack.jobs.cancel(job.jobId);
    },
  );

  it('estimates recent results from the batch objects bytes when there are more than it reads', async () => {
    const exact = await countRecentResults(stack.clients.s3, stack.names.resultsBucket, {
      since: new Date(Date.now() - 30 * 60_000),
    });
    assert.ok(exact.batches >= 2, JSON.stringify(exact));
    const estimate = await countRecentResults(stack.clients.s3, stack.names.resultsBucket, {
      since: new Date(Date.now() - 30 * 60_000),
      readLimit: 1,
    });
    assert.equal(estimate.estimated, true);
    assert.equal(estimate.batches, exact.batches);
    assert.equal(estimate.ok, undefined, 'no ok/failed split for an estimate');
    assert.ok(estimate.results > 0);
  });

  it('ends quietly with status 141 when the reader of stdout goes away', GENEROUS, async () => {
    const child = spawn(
      process.execPath,
      [
        join(PACKAGE_ROOT, 'bin', 'labeler.mjs'),
        'upload',
        thousand,
        '--prefix',
        'datasets/thousand',
        ...where(),
      ],
      { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const first = await new Promise<string>((resolve) => {
      let seen = '';
      child.stdout.on('data', (d: Buffer) => {
        seen += d.toString();
        const end = seen.indexOf('\n');
        if (end >= 0) {
          child.stdout.destroy();
          resolve(seen.slice(0, end));
        }
      });
    });
    assert.equal(JSON.parse(first).status, 'present');
    assert.equal(await exited, 141, stderr);
    assert.doesNotMatch(stderr, /EPIPE|Error|\n\s+at /);
  });

  it(
    'gives a file named twice (a folder and a folder inside it) each key, and refuses a key two files would take',
    GENEROUS,
    async () => {
      const folder = join(dir, 'twice');
      await mkdir(join(folder, 'sub'), { recursive: true });
      const sample = join(DEFAULT_MODEL_DIR, 'samples', 'test-00000.png');
      await copyFile(sample, join(folder, 'sub', 'x.png'));
      const other = join(dir, 'twice-other');
      await mkdir(other);
      await copyFile(join(DEFAULT_MODEL_DIR, 'samples', 'test-00001.png'), join(other, 'x.png'));

      const run = await runCli([
        'upload',
        folder,
        join(folder, 'sub'),
        join(other, 'x.png'),
        '--prefix',
        'datasets/twice',
        ...where(),
      ]);

      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(
        jsonLines(run.stdout).map((r) => [r.key, r.status, (r.error as { code?: string } | undefined)?.code]),
        [
          ['datasets/twice/sub/x.png', 'uploaded', undefined],
          ['datasets/twice/x.png', 'uploaded', undefined],
          ['datasets/twice/x.png', 'skipped', 'upload/duplicate-key'],
        ],
      );
      const sha256 = createHash('sha256')
        .update(await readFile(sample))
        .digest('hex');
      for (const key of ['datasets/twice/sub/x.png', 'datasets/twice/x.png']) {
        const head = await stack.clients.s3.send(
          new HeadObjectCommand({ Bucket: stack.names.imagesBucket, Key: key }),
        );
        assert.equal(head.Metadata?.[CONTENT_SHA256_METADATA], sha256, `${key} holds the file named twice`);
      }
    },
  );

  it('refuses bad use with status 2 and says why', async () => {
    const none = await runCli(['upload', ...where()]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /name at least one file or folder/);

    const notLabeled = await runCli(['upload', thousand, '--prefix', 'datasets/x', '--wait', ...where()]);
    assert.equal(notLabeled.code, 2);
    assert.match(notLabeled.stderr, /not labeled on arrival.*labeler jobs start --prefix datasets\/x\//);

    const expectAlone = await runCli(['upload', thousand, '--expect', 'x.csv', ...where()]);
    assert.equal(expectAlone.code, 2);
    assert.match(expectAlone.stderr, /--expect goes with --wait/);

    const noStack = await runCli(['upload', thousand, '--data-dir', join(dir, 'nothing-here')]);
    assert.equal(noStack.code, 1);
    assert.match(noStack.stderr, /\[local\/not-running\]/);
    assert.equal(noStack.stdout, '');
  });

  it('help names the options, the stack options and the exit status', async () => {
    const run = await runCli(['upload', '--help']);
    assert.equal(run.code, 0);
    for (const word of ['--prefix', '--concurrency', '--wait', '--expect', '--stack', 'Exit status']) {
      assert.ok(run.stdout.includes(word), word);
    }
    const status = await runCli(['status', '--help']);
    assert.match(status.stdout, /ApproximateAgeOfOldestMessage/);
    const top = await runCli(['--help']);
    assert.match(top.stdout, /upload <files or folders\.\.\.>/);
    assert.match(top.stdout, /status /);
  });
});
