import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { labelsModelDir } from '../../cli/stack.ts';
import { CODE } from '../../shared/error-codes.ts';
import { LabelerError } from '../../shared/errors.ts';
import type { StackModels } from '../../shared/labeling/stack-models.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';

describe('labelsModelDir: whose labels evaluate and review work in (decision 0037)', () => {
  let root: string;
  let candidateDir: string;
  let models: StackModels;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'labeler-labels-model-'));
    candidateDir = join(root, 'candidate');
    cpSync(DEFAULT_MODEL_DIR, candidateDir, { recursive: true, filter: (p) => !p.includes('samples') });
    const manifestPath = join(candidateDir, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(manifestPath, JSON.stringify({ ...manifest, id: 'candidate', version: '2.0.0' }));
    const hosted = (name: string, id: string, version: string, dir: string) => ({
      name,
      id,
      version,
      jobsQueueUrl: `q://${name}`,
      objectsPerMessage: 10,
      dir,
    });
    models = {
      default: 'fashion-efficientnet',
      models: [
        hosted('fashion-efficientnet', 'fashion-efficientnet', '1.0.0', DEFAULT_MODEL_DIR),
        hosted('candidate', 'candidate', '2.0.0', candidateDir),
        hosted('gone', 'gone', '1.0.0', join(root, 'not-here')),
      ],
    };
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it("defaults to the stack's default model, or the job's model", async () => {
    assert.equal(await labelsModelDir(models, undefined), DEFAULT_MODEL_DIR);
    assert.equal(await labelsModelDir({ ...models, default: 'candidate' }, undefined), candidateDir);
    assert.equal(
      await labelsModelDir(models, undefined, { id: 'candidate', version: '2.0.0', name: 'candidate' }),
      candidateDir,
    );
  });

  it('takes --model as a hosted name or id@version, else a folder; no stack: the bundled model', async () => {
    assert.equal(await labelsModelDir(models, 'candidate'), candidateDir);
    assert.equal(await labelsModelDir(models, 'candidate@2.0.0'), candidateDir);
    assert.equal(await labelsModelDir(models, candidateDir), candidateDir);
    assert.equal(await labelsModelDir(undefined, undefined), DEFAULT_MODEL_DIR);
  });

  it('says so when a hosted model has no folder on this machine', async () => {
    await assert.rejects(
      labelsModelDir(models, 'gone'),
      (error: unknown) =>
        error instanceof LabelerError &&
        error.code === CODE.model.notFound &&
        /gone \(gone@1\.0\.0\).*give --model <its folder>/.test(error.message),
    );
  });
});
