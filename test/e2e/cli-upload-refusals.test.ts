import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../../shared/paths.ts';
import { runCli } from '../helpers/cli.ts';
import { type FakeStack, startFakeStack } from '../helpers/fake-stack.ts';

const SAMPLES = join(PACKAGE_ROOT, 'models', 'fashion-efficientnet', 'samples');

/** Against a stand-in stack that records every request: what reaches the stack, and what is suggested. */
describe('labeler upload: refusals before anything is sent, suggestions a shell can run', () => {
  let fake: FakeStack | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  async function sample(): Promise<string> {
    return join(SAMPLES, (await readdir(SAMPLES)).find((f) => f.endsWith('.png')) as string);
  }

  it('--wait with a prefix not labeled on arrival is refused before the stack is even asked', async () => {
    fake = await startFakeStack();
    const run = await runCli([
      'upload',
      await sample(),
      '--prefix',
      'datasets/x/',
      '--wait',
      '--data-dir',
      fake.dataDir,
    ]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /would never end/);
    assert.deepEqual(fake.requests, [], 'nothing sent');
    assert.equal(run.stdout, '');
  });

  it('--prefix "" suggests "labeler jobs start --prefix \'\'", not a command missing its argument', async () => {
    fake = await startFakeStack((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(req.method === 'HEAD' ? 404 : 200, { etag: '"e"' });
        res.end();
      });
    });
    const run = await runCli(['upload', await sample(), '--prefix', '', '--data-dir', fake.dataDir]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /label them with: labeler jobs start --prefix ''\n/);

    const wait = await runCli([
      'upload',
      await sample(),
      '--prefix',
      '',
      '--wait',
      '--data-dir',
      fake.dataDir,
    ]);
    assert.equal(wait.code, 2, wait.stderr);
    assert.match(wait.stderr, /labeler jobs start --prefix '' --wait/);
  });
});
