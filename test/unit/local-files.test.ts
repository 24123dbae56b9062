import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LabelerError, LOCAL_FILE_ERROR_CODES } from '../../shared/errors.ts';
import { listFiles, readLocalFile } from '../../shared/local-files.ts';
import { PACKAGE_ROOT } from '../../shared/paths.ts';

// Before the fixes these reads never returned; the deadline turns a hang into a failure.
const HANG_GUARD = { timeout: 60_000 };

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof LabelerError, `expected a LabelerError, got ${String(error)}`);
  return error.code;
}

describe('local files: listing', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-files-'));
    await mkdir(join(dir, 'tree', 'sub'), { recursive: true });
    await writeFile(join(dir, 'tree', 'b.png'), 'b');
    await writeFile(join(dir, 'tree', 'sub', 'c.png'), 'c');
    await writeFile(join(dir, 'tree', '.hidden.png'), 'h');
    await writeFile(join(dir, 'outside.png'), 'o');
    await symlink(join(dir, 'outside.png'), join(dir, 'tree', 'a-link.png'));
    await symlink('nowhere.png', join(dir, 'tree', 'dangling.png'));
    await symlink('..', join(dir, 'tree', 'sub', 'up'));
    await symlink('loop-b', join(dir, 'tree', 'loop-a'));
    await symlink('loop-a', join(dir, 'tree', 'loop-b'));
    execFileSync('mkfifo', [join(dir, 'tree', 'fifo.jpg')]);
    await symlink('/dev/zero', join(dir, 'tree', 'zero.jpg'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives every path named or found exactly one entry, bad ones with their code', HANG_GUARD, async () => {
    const missing = join(dir, 'missing.png');
    const entries = await listFiles([join(dir, 'tree'), missing]);
    const rows = entries.map((e) => [e.path.slice(dir.length + 1), e.error?.code ?? 'ok']);
    assert.deepEqual(rows, [
      ['tree/a-link.png', 'ok'],
      ['tree/b.png', 'ok'],
      ['tree/dangling.png', 'file/not-found'],
      ['tree/fifo.jpg', 'file/not-regular'],
      ['tree/loop-a', 'file/symlink-loop'],
      ['tree/loop-b', 'file/symlink-loop'],
      ['tree/sub/c.png', 'ok'],
      ['tree/sub/up', 'file/symlink-loop'],
      ['tree/zero.jpg', 'file/not-regular'],
      ['missing.png', 'file/not-found'],
    ]);
    const dangling = entries.find((e) => e.path.endsWith('dangling.png'));
    assert.match(dangling?.error?.message ?? '', /symbolic link to nowhere\.png, which does not exist/);
  });

  it('keeps a named path whatever it is, and names a FIFO as one', HANG_GUARD, async () => {
    const [fifo] = await listFiles([join(dir, 'tree', 'fifo.jpg')]);
    assert.equal(fifo?.error?.code, 'file/not-regular');
    assert.match(fifo?.error?.message ?? '', /FIFO/);
  });
});

describe('local files: reading', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-read-'));
    execFileSync('mkfifo', [join(dir, 'fifo.jpg')]);
    await symlink('/dev/zero', join(dir, 'zero.jpg'));
    await writeFile(join(dir, 'small.png'), 'twelve bytes');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a regular file whole', async () => {
    const bytes = await readLocalFile(join(dir, 'small.png'), 12);
    assert.equal(Buffer.from(bytes).toString(), 'twelve bytes');
  });

  it('refuses a file over the limit from its size', async () => {
    assert.equal(await codeOf(readLocalFile(join(dir, 'small.png'), 11)), 'image/too-large');
  });

  it(
    'refuses a link to /dev/zero as not a regular file instead of reading it forever',
    HANG_GUARD,
    async () => {
      assert.equal(await codeOf(readLocalFile(join(dir, 'zero.jpg'), 1024)), 'file/not-regular');
    },
  );

  it('refuses a FIFO with no writer instead of waiting for one', HANG_GUARD, async () => {
    assert.equal(await codeOf(readLocalFile(join(dir, 'fifo.jpg'), 1024)), 'file/not-regular');
  });

  it('reads at most limit + 1 bytes from a file whose size says 0 (/proc)', {
    skip: existsSync('/proc/self/maps') ? false : 'no /proc here',
  }, async () => {
    // /proc/self/maps is a regular file whose stat size is 0 but which has far more than 16 bytes.
    assert.equal(await codeOf(readLocalFile('/proc/self/maps', 16)), 'image/too-large');
  });

  it('names a missing file file/not-found', async () => {
    assert.equal(await codeOf(readLocalFile(join(dir, 'gone.png'), 1024)), 'file/not-found');
  });

  it('names a folder file/not-regular', async () => {
    assert.equal(await codeOf(readLocalFile(dir, 1024)), 'file/not-regular');
  });
});

describe('local files: documentation', () => {
  it("lists every file/* code in the README's error table", () => {
    const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8');
    for (const code of LOCAL_FILE_ERROR_CODES) assert.ok(readme.includes(`\n| \`${code}\` `), code);
  });
});
