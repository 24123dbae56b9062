import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../../shared/paths.ts';
import { type CliRun, runCli } from '../helpers/cli.ts';
import { startFakeStack } from '../helpers/fake-stack.ts';

/** One coded line on stderr, exit 1: no stack trace ("    at ..."), no Node.js banner. */
function assertOneCodedLine(run: CliRun, code: string): void {
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, new RegExp(`^labeler \\w+: \\[${code.replace('/', '\\/')}\\] .+\\n$`));
  assert.doesNotMatch(run.stderr, /^\s+at /m);
  assert.doesNotMatch(run.stderr, /Node\.js v/);
}

/** Runs the CLI as an unprivileged user: as uid 65534 (nobody) when this test runs as root. */
function runCliUnprivileged(args: string[]): Promise<CliRun> {
  const asRoot = process.getuid?.() === 0;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'bin', 'labeler.mjs'), ...args], {
      cwd: tmpdir(),
      env: { ...process.env, HOME: tmpdir() },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
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

  it('local up --data-dir <a folder this user may not write>: local/bad-data-dir, permission denied', async () => {
    const closed = join(dir, 'closed');
    await mkdir(closed);
    await chmod(closed, 0o500);
    // Readable by everyone up to here, so only the closed folder refuses.
    await chmod(dir, 0o755);
    const run = await runCliUnprivileged(['local', 'up', '--data-dir', join(closed, 'x')]);
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
