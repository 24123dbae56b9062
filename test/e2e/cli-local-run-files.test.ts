import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { IMAGE_LIMITS } from '../../shared/settings.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { alive, childPids, LabelerProcess } from '../helpers/labeler-process.ts';
import { waitFor } from '../helpers/wait.ts';

/** A regression that hangs (a second stack that never exits) fails instead of stalling the run. */
const GENEROUS_MS = 600_000;

describe('labeler local run: large files, and Ctrl-C', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-run-files-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('labels a JPEG over the emulator 11 MiB request limit; a file over the limit, a dangling link and a FIFO get failed rows', {
    timeout: GENEROUS_MS,
  }, async () => {
    const folder = join(dir, 'large');
    await rm(folder, { recursive: true, force: true });
    await mkdir(folder);
    const width = 2600;
    const height = 2000;
    const jpeg = await sharp(randomBytes(width * height * 3), { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 100, chromaSubsampling: '4:4:4' })
      .toBuffer();
    assert.ok(jpeg.length > 12 * 1024 * 1024, `the test JPEG has ${jpeg.length} bytes`);
    await writeFile(join(folder, 'a-large.jpg'), jpeg);
    await writeFile(join(folder, 'b-over-limit.jpg'), Buffer.concat([jpeg, jpeg, jpeg]));
    await copyFile(join(DEFAULT_MODEL_DIR, 'samples', 'test-00000.png'), join(folder, 'c-small.png'));
    // Paths that cannot be uploaded get their own rows too, in listing order, without being read.
    await symlink('missing.png', join(folder, 'd-dangling.png'));
    execFileSync('mkfifo', [join(folder, 'e-fifo.jpg')]);

    const run = await runCli(['local', 'run', folder]);

    assert.equal(run.code, 0, run.stderr);
    const rows = jsonLines(run.stdout);
    assert.deepEqual(
      rows.map((r) => [
        r.key ?? String(r.file).slice(folder.length + 1),
        r.status,
        (r.error as { code?: string } | undefined)?.code,
      ]),
      [
        ['images/a-large.jpg', 'ok', undefined],
        ['images/b-over-limit.jpg', 'failed', 'image/too-large'],
        ['images/c-small.png', 'ok', undefined],
        ['d-dangling.png', 'failed', 'file/not-found'],
        ['e-fifo.jpg', 'failed', 'file/not-regular'],
      ],
    );
    assert.match(
      String((rows[1]?.error as { message?: string } | undefined)?.message),
      new RegExp(`the limit is ${IMAGE_LIMITS.maxBytes}`),
    );
    // The CPU is told apart by process: the handler's (what Lambda bills) from the emulators'.
    const summary = JSON.parse(run.stderr.match(/^summary (.*)$/m)?.[1] ?? '{}') as {
      cpuSeconds: number;
      cpuSecondsBy: { handler: number; s3SqsAndGlue: number; dynamoDbLocal: number };
    };
    const { handler, s3SqsAndGlue, dynamoDbLocal } = summary.cpuSecondsBy;
    assert.ok(handler > 0, 'the handler decoded a 5 MP JPEG in its own process');
    assert.ok(s3SqsAndGlue > 0 && dynamoDbLocal > 0, run.stderr);
    assert.ok(Math.abs(handler + s3SqsAndGlue + dynamoDbLocal - summary.cpuSeconds) < 1e-6);
  });

  it('on Ctrl-C prints the rows it has and how many are pending, then stops the stack', {
    timeout: GENEROUS_MS,
  }, async () => {
    const samples = join(DEFAULT_MODEL_DIR, 'samples');
    const run = new LabelerProcess(['local', 'run', samples], { ownProcessGroup: true });
    try {
      const [, total] = await run.waitForOutput(/uploading (\d+) files/);
      const [jvm] = await childPids(run.child.pid ?? 0, 'java');
      assert.ok(jvm, 'DynamoDB Local runs as a child of local run');

      // The whole process group, as a terminal sends it: DynamoDB Local and the execution
      // environments must not die of it before the stack has stopped them.
      run.pressCtrlC();

      assert.equal(await run.exited, 130, run.output);
      assert.doesNotMatch(run.stderr, /dynamodb-exited|execution environment \d+ exited/, run.stderr);
      const summary = JSON.parse(run.stderr.match(/^summary (.*)$/m)?.[1] ?? '{}') as {
        ok: number;
        failed: number;
        pending: number;
      };
      assert.ok(summary.pending > 0, run.stderr);
      assert.equal(summary.ok + summary.failed + summary.pending, Number(total));
      assert.equal(jsonLines(run.stdout).length, summary.ok + summary.failed);
      assert.match(run.stderr, new RegExp(`interrupted: ${summary.pending} of ${total} files still pending`));
      await waitFor('DynamoDB Local to stop', () => (alive(jvm) ? undefined : true), 60_000);
    } finally {
      run.kill('SIGKILL');
    }
  });
});
