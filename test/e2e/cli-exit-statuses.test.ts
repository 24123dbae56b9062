import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../../shared/paths.ts';
import { type FakeStack, startFakeStack } from '../helpers/fake-stack.ts';
import { LabelerProcess } from '../helpers/labeler-process.ts';

const SAMPLES = join(PACKAGE_ROOT, 'models', 'fashion-efficientnet', 'samples');

/**
 * Exit statuses a shell would report, against a stand-in stack that holds every S3
 * request open: the command is known to be mid-request when the signal arrives.
 */
describe('exit statuses: 130 for SIGINT, 143 for SIGTERM, 141 for a closed stdout', () => {
  let fake: FakeStack | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  for (const [signal, status] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    it(`export: ${signal} mid-export exits ${status} and writes nothing`, async () => {
      fake = await startFakeStack();
      const out = join(fake.dataDir, 'out.jsonl');
      const run = new LabelerProcess([
        'export',
        '--prefix',
        'datasets/',
        '--out',
        out,
        '--data-dir',
        fake.dataDir,
      ]);
      await fake.firstRequest;
      run.kill(signal);
      assert.equal(await run.exited, status, run.output);
      assert.match(run.stderr, /interrupted: nothing written/);
      assert.deepEqual(
        (await readdir(fake.dataDir)).filter((f) => f.startsWith('out')),
        [],
        'no file, no temporary file',
      );
    });

    it(`upload: ${signal} mid-upload exits ${status}; the transfer in flight finishes, no other starts`, async () => {
      // Requests are held until the command says it has the signal, then answered: the
      // HEAD as "not stored yet", the PUT as stored.
      const held: Array<() => void> = [];
      let released = false;
      const keys: string[] = [];
      fake = await startFakeStack((req, res) => {
        keys.push(`${req.method} ${req.url}`);
        const reply = () => {
          req.resume();
          req.on('end', () => {
            res.writeHead(req.method === 'HEAD' ? 404 : 200, { etag: '"e"' });
            res.end();
          });
        };
        if (released) reply();
        else held.push(reply);
      });
      const samples = (await readdir(SAMPLES)).filter((f) => f.endsWith('.png')).slice(0, 2);
      const run = new LabelerProcess([
        'upload',
        ...samples.map((f) => join(SAMPLES, f)),
        '--concurrency',
        '1',
        '--data-dir',
        fake.dataDir,
      ]);
      await fake.firstRequest;
      run.kill(signal);
      await run.waitForOutput(new RegExp(`${signal}: finishing the transfers in flight`));
      released = true;
      for (const reply of held.splice(0)) reply();
      assert.equal(await run.exited, status, run.output);
      assert.ok(
        keys.every((k) => k.includes(samples[0] as string)),
        `only the first file was sent: ${keys.join(', ')}`,
      );
    });
  }

  it('query label with its stdout read prints the rows, then the "next" cursor on stderr', async () => {
    fake = await startFakeStack((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          items: [{ bucket: 'labeler-images', key: 'images/a.png', label: 'Sneaker', score: 0.9, rank: 1 }],
          cursor: 'more',
        }),
      );
    });
    const run = new LabelerProcess(['query', 'label', 'Sneaker', '--data-dir', fake.dataDir]);
    assert.equal(await run.exited, 0, run.output);
    assert.match(run.stdout, /images\/a\.png/);
    assert.equal(run.stderr, 'next: --cursor more\n');
  });

  it('query label with its stdout closed (| head -0) exits 141 and prints no "next" cursor', async () => {
    fake = await startFakeStack((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          items: [{ bucket: 'labeler-images', key: 'images/a.png', label: 'Sneaker', score: 0.9, rank: 1 }],
          cursor: 'more',
        }),
      );
    });
    const child = spawn(
      process.execPath,
      [join(PACKAGE_ROOT, 'bin', 'labeler.mjs'), 'query', 'label', 'Sneaker', '--data-dir', fake.dataDir],
      { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // The reader goes away before anything is written, as `head -0` does.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.equal(code, 141, stderr);
    assert.doesNotMatch(stderr, /next:/);
    assert.equal(stderr, '');
  });
});
