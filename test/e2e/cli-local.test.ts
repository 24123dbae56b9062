import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createAwsClients } from '../../shared/aws/clients.ts';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../../shared/paths.ts';
import { RESOURCE_NAMES, UPLOAD_FILTER } from '../../shared/settings.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { waitFor } from '../helpers/wait.ts';

describe('labeler local up, then labeler query against it', () => {
  let dataDir: string;
  let up: ReturnType<typeof spawn>;
  let upOutput = '';

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-up-'));
    up = spawn(
      process.execPath,
      [join(PACKAGE_ROOT, 'bin', 'labeler.mjs'), 'local', 'up', '--data-dir', dataDir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    up.stdout?.on('data', (d: Buffer) => {
      upOutput += d.toString();
    });
    up.stderr?.on('data', (d: Buffer) => {
      upOutput += d.toString();
    });
  });
  after(async () => {
    if (up.exitCode === null) up.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });

  it('serves uploads and queries until Ctrl-C, then stops cleanly', async () => {
    const endpoints = await waitFor(
      'endpoints.json',
      // Complete JSON, not merely an existing file.
      async () =>
        readFile(join(dataDir, 'endpoints.json'), 'utf8')
          .then((text) => {
            JSON.parse(text);
            return text;
          })
          .catch(() => undefined),
      60_000,
    );
    const { region, endpoints: e } = JSON.parse(endpoints) as {
      region: string;
      endpoints: { s3: string; dynamodb: string };
    };
    assert.match(e.s3, /^http:\/\/127\.0\.0\.1:\d+/);
    assert.match(e.dynamodb, /^http:\/\/127\.0\.0\.1:\d+/);
    assert.match(upOutput, /local stack is up/);

    const clients = createAwsClients({ region, endpoints: { s3: e.s3 }, local: true });
    const key = `${UPLOAD_FILTER.prefix}cli/shoe one.png`;
    const body = await readFile(join(DEFAULT_MODEL_DIR, 'samples', 'test-00000.png'));
    await clients.s3.send(
      new PutObjectCommand({ Bucket: RESOURCE_NAMES.imagesBucket, Key: key, Body: body }),
    );
    clients.s3.destroy();

    const image = await waitFor(
      'the image result',
      async () => {
        const run = await runCli(['query', 'image', key, '--data-dir', dataDir]);
        return run.code === 0 && run.stdout.trim() !== '' ? run : undefined;
      },
      30_000,
    );
    const [result] = jsonLines(image.stdout);
    assert.equal(result?.key, key);
    assert.equal(result?.status, 'ok');
    const top = (result?.labels as Array<{ label: string; score: number }> | undefined)?.[0];
    assert.ok(top);

    const byLabel = await runCli([
      'query',
      'label',
      top.label,
      '--min-score',
      String(top.score / 2),
      '--data-dir',
      dataDir,
    ]);
    assert.equal(byLabel.code, 0, byLabel.stderr);
    assert.deepEqual(
      jsonLines(byLabel.stdout).map((h) => h.key),
      [key],
    );
    const none = await runCli(['query', 'label', top.label, '--min-score', '1', '--data-dir', dataDir]);
    assert.equal(none.stdout, '');

    up.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => up.once('exit', resolve));
    assert.equal(code, 0, upOutput);
    await assert.rejects(readFile(join(dataDir, 'endpoints.json')), 'endpoints.json is removed on exit');
  });

  it('tells the user how to start a stack when none is running', async () => {
    const run = await runCli(['query', 'label', 'Bag', '--data-dir', join(dataDir, 'none')]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /\[local\/not-running\].*labeler local up/);
  });
});
