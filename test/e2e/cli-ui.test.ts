import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.ts';

describe('labeler ui: options and a stack that is not there', () => {
  let empty: string;
  before(async () => {
    empty = await mkdtemp(join(tmpdir(), 'labeler-ui-cli-'));
  });
  after(async () => {
    await rm(empty, { recursive: true, force: true });
  });

  it('--help describes the page and exits 0', async () => {
    const run = await runCli(['ui', '--help']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Usage: labeler ui/);
    assert.match(run.stdout, /127\.0\.0\.1/);
  });

  it('a port that is not a number is a usage error (exit 2), checked before any stack is read', async () => {
    const run = await runCli(['ui', '--port', 'eighty', '--data-dir', empty]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--port must be a port number/);
  });

  it('with no local stack running it says local/not-running and exits 1, serving nothing', async () => {
    const run = await runCli(['ui', '--data-dir', empty]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /\[local\/not-running\]/);
    assert.doesNotMatch(run.stdout, /Results page/);
  });
});
