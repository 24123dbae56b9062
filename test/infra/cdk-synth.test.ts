import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { REPO_ROOT } from '../../infra/image.ts';

// `npm test` runs the real CLI once: cdk.json -> infra/app.ts -> cdk-nag, offline, no Docker.
it('`cdk synth --quiet` exits 0 offline', { timeout: 600_000 }, () => {
  const outdir = mkdtempSync(join(tmpdir(), 'labeler-cdk-cli-'));
  try {
    const result = spawnSync('npx', ['cdk', 'synth', '--quiet', '--no-notices', '--output', outdir], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      // A generous kill switch, not a speed check: synthesis takes seconds.
      timeout: 540_000,
      env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1', CDK_DISABLE_CLI_TELEMETRY: 'true' },
    });
    assert.equal(result.status, 0, `cdk synth failed:\n${result.stdout}\n${result.stderr}`);
    const manifest = JSON.parse(readFileSync(join(outdir, 'manifest.json'), 'utf8'));
    assert.ok(manifest.artifacts.Labeler, 'the Labeler stack is in the assembly');
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
});

it('a bad cdk.json or -c setting stops `cdk synth` with one line naming it, no stack trace', {
  timeout: 600_000,
}, () => {
  const outdir = mkdtempSync(join(tmpdir(), 'labeler-cdk-cli-'));
  try {
    const result = spawnSync(
      'npx',
      [
        'cdk',
        'synth',
        '--quiet',
        '--no-notices',
        '--output',
        outdir,
        '-c',
        'modelDir=',
        '-c',
        'models=models/nope',
      ],
      {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        timeout: 540_000,
        env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1', CDK_DISABLE_CLI_TELEMETRY: 'true' },
      },
    );
    assert.notEqual(result.status, 0);
    assert.match(
      result.stderr,
      /labeler cdk: \[config\/invalid\] context "models": model "nope" \(models\/nope\) has no readable manifest/,
    );
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
});
