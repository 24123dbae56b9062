import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CliRun, runCli, unprivilegedSkip } from '../helpers/cli.ts';
import { startFakeStack } from '../helpers/fake-stack.ts';

/** One coded line on stderr, exit 1: no stack trace ("    at ..."), no Node.js banner. */
function assertOneCodedLine(run: CliRun, code: string): void {
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, new RegExp(`^labeler \\w+: \\[${code.replace('/', '\\/')}\\] .+\\n$`));
  assert.doesNotMatch(run.stderr, /^\s+at /m);
  assert.doesNotMatch(run.stderr, /Node\.js v/);
}

describe('system errors are one coded line, never a stack trace or a hang', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-syserr-'));
  });
  after(async () => {
    await chmod(join(dir, 'closed'), 0o700).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('local up --data-dir <a file>: local/bad-data-dir naming the file (was ENOTDIR and a trace)', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    const run = await runCli(['local', 'up', '--data-dir', file]);
    assertOneCodedLine(run, 'local/bad-data-dir');
    assert.match(run.stderr, new RegExp(`${file} is a file, not a folder`));
  });

  it('local up --data-dir <a folder this user may not write>: local/bad-data-dir, permission denied', {
    skip: unprivilegedSkip(),
  }, async () => {
    const closed = join(dir, 'closed');
    await mkdir(closed);
    await chmod(closed, 0o500);
    // Readable by everyone up to here, so only the closed folder refuses.
    await chmod(dir, 0o755);
    const run = await runCli(['local', 'up', '--data-dir', join(closed, 'x')], {}, { unprivileged: true });
    assertOneCodedLine(run, 'local/bad-data-dir');
    assert.match(run.stderr, /permission denied \(EACCES\)/);
  });

  it('local up --data-dir /proc/nope ends (it hung) with local/bad-data-dir', {
    skip: !existsSync('/proc/self') && 'no /proc here',
    timeout: 120_000,
  }, async () => {
    const run = await runCli(['local', 'up', '--data-dir', '/proc/nope']);
    assertOneCodedLine(run, 'local/bad-data-dir');
  });

  it('ui --port <a port in use>: ui/port-in-use (was EADDRINUSE and a trace)', async () => {
    const fake = await startFakeStack((req, res) => {
      req.resume();
      res.writeHead(500);
      res.end();
    });
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      const run = await runCli(['ui', '--port', String(port), '--data-dir', fake.dataDir]);
      assertOneCodedLine(run, 'ui/port-in-use');
      assert.match(run.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use`));
      assert.equal(run.stdout, '');
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
      await fake.close();
    }
  });
});
