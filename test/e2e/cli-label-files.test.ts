import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../../shared/paths.ts';
import { type CliRun, jsonLines, runCli, unprivilegedSkip } from '../helpers/cli.ts';

const SAMPLE = join(DEFAULT_MODEL_DIR, 'samples', 'test-00000.png');
const LABELER = join(PACKAGE_ROOT, 'bin', 'labeler.mjs');
// Before the fixes, FIFOs and /dev/zero made the CLI wait or read forever: a deadline
// turns that hang into a failure. It never judges speed.
const HANG_GUARD = { timeout: 240_000 };

function errorCode(row: Record<string, unknown> | undefined): string | undefined {
  return (row?.error as { code?: string } | undefined)?.code;
}

function byName(run: CliRun): Map<string, Record<string, unknown>> {
  return new Map(jsonLines(run.stdout).map((r) => [basename(r.file as string), r]));
}

describe('labeler label: files that are not plain images', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-cli-files-'));
    // World-searchable, so the unprivileged run below can reach the fixtures.
    await chmod(dir, 0o755);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(
    'gives a good file its row next to missing, FIFO and /dev/zero paths, and exits 0',
    HANG_GUARD,
    async () => {
      const good = join(dir, 'good.png');
      await copyFile(SAMPLE, good);
      execFileSync('mkfifo', [join(dir, 'fifo.jpg')]);
      await symlink('/dev/zero', join(dir, 'zero.jpg'));

      const run = await runCli([
        'label',
        good,
        join(dir, 'missing.png'),
        join(dir, 'fifo.jpg'),
        join(dir, 'zero.jpg'),
        '--format',
        'jsonl',
      ]);
      assert.equal(run.code, 0, run.stderr);
      const rows = jsonLines(run.stdout);
      assert.deepEqual(
        rows.map((r) => [basename(r.file as string), r.status, errorCode(r)]),
        [
          ['good.png', 'ok', undefined],
          ['missing.png', 'failed', 'file/not-found'],
          ['fifo.jpg', 'failed', 'file/not-regular'],
          ['zero.jpg', 'failed', 'file/not-regular'],
        ],
      );
      assert.match(run.stderr, /labeled 4 files: 1 ok, 3 failed/);
    },
  );

  it(
    'follows links inside folders, and gives dangling links, FIFOs and loops a row each',
    HANG_GUARD,
    async () => {
      const folder = join(dir, 'tree');
      await mkdir(join(folder, 'sub'), { recursive: true });
      await copyFile(SAMPLE, join(dir, 'elsewhere.png'));
      await symlink(join(dir, 'elsewhere.png'), join(folder, 'linked.png'));
      await symlink('gone.png', join(folder, 'dangling.png'));
      await symlink('..', join(folder, 'sub', 'back-up'));
      execFileSync('mkfifo', [join(folder, 'pipe.jpg')]);

      const run = await runCli(['label', folder, '--format', 'jsonl']);
      assert.equal(run.code, 0, run.stderr);
      const rows = byName(run);
      assert.equal(jsonLines(run.stdout).length, 4);
      assert.equal(rows.get('linked.png')?.status, 'ok');
      assert.equal(errorCode(rows.get('dangling.png')), 'file/not-found');
      assert.equal(errorCode(rows.get('pipe.jpg')), 'file/not-regular');
      assert.equal(errorCode(rows.get('back-up')), 'file/symlink-loop');
    },
  );

  it('gives an unreadable sub-folder a file/unreadable row instead of crashing (as uid 65534 when root)', {
    ...HANG_GUARD,
    skip: unprivilegedSkip(),
  }, async () => {
    const folder = join(dir, 'with-locked');
    await mkdir(join(folder, 'locked'), { recursive: true });
    await copyFile(SAMPLE, join(folder, 'good.png'));
    await copyFile(SAMPLE, join(folder, 'locked', 'hidden-from-me.png'));
    await chmod(folder, 0o755);
    await chmod(join(folder, 'good.png'), 0o644);
    await chmod(join(folder, 'locked'), 0o000);

    const run = await runCli(['label', folder, '--format', 'jsonl'], {}, { unprivileged: true });
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    const rows = byName(run);
    assert.equal(rows.size, 2, run.stdout);
    assert.equal(rows.get('good.png')?.status, 'ok');
    assert.equal(errorCode(rows.get('locked')), 'file/unreadable');
  });

  it('labels a 1 x 3,000,000 PNG instead of calling it corrupt', HANG_GUARD, async () => {
    const tall = join(dir, 'tall.png');
    await sharp({ create: { width: 1, height: 3_000_000, channels: 3, background: '#808080' } })
      .png()
      .toFile(tall);
    const run = await runCli(['label', tall, '--format', 'jsonl']);
    assert.equal(run.code, 0, run.stderr);
    const [row] = jsonLines(run.stdout);
    assert.equal(row?.status, 'ok', JSON.stringify(row));
    assert.match(run.stderr, /labeled 1 file: 1 ok, 0 failed/);
  });
});

describe('labeler label: a closed stdout', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-cli-pipe-'));
    // Far more output than any pipe or socket buffer holds (about 1 MB of rows), so
    // the CLI is certainly still writing when the reader goes away.
    const name = 'an-empty-file-with-a-long-name-so-that-its-row-is-long'.padEnd(120, '-');
    for (let i = 0; i < 5000; i += 100) {
      // A hundred at a time: well under any open-file limit.
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          writeFile(join(dir, `${name}${String(i + j).padStart(5, '0')}.png`), ''),
        ),
      );
    }
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(
    'ends quietly with status 141 when the reader closes after the first line, as cat does',
    HANG_GUARD,
    async () => {
      const child = spawn(process.execPath, [LABELER, 'label', dir, '--format', 'jsonl'], {
        cwd: PACKAGE_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      // Like `| head -1`: read up to the first newline, then close the pipe.
      const firstLine = await new Promise<string>((resolve) => {
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
      const code = await exited;

      assert.equal(JSON.parse(firstLine).status, 'failed');
      assert.equal(code, 141, stderr);
      assert.doesNotMatch(stderr, /EPIPE|Error|\n\s+at /, 'nothing but quiet');
    },
  );
});

describe('labeler label: options and messages', () => {
  it('refuses --top-k beyond the model class count, naming the count', async () => {
    const run = await runCli(['label', SAMPLE, '--top-k', '20']);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');
    assert.match(
      run.stderr,
      /--top-k 20 asks for more labels than model fashion-efficientnet has classes \(10\)/,
    );
  });

  it('still accepts --top-k equal to the class count', async () => {
    const run = await runCli(['label', SAMPLE, '--top-k', '10', '--format', 'jsonl']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((jsonLines(run.stdout)[0]?.labels as unknown[] | undefined)?.length, 10);
  });

  it('says which option is unknown with balanced quotes', async () => {
    const run = await runCli(['label', SAMPLE, '--bogus']);
    assert.equal(run.code, 2);
    const line = run.stderr.split('\n')[0] ?? '';
    assert.match(line, /unknown option "--bogus"/);
    assert.equal((line.match(/"/g) ?? []).length % 2, 0, line);
    assert.equal((line.match(/'/g) ?? []).length % 2, 0, line);
  });
});
