import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import {
  CAT_JPEG,
  checkExportedModel,
  labelCat,
  type TorchvisionRecipe,
  torchvisionRecipes,
} from '../helpers/models.ts';

// Exports two variants with random weights (no download): B0, and B1, whose torchvision
// recipe resizes to 255 and crops 240 with bilinear interpolation, unlike B0's 256/224
// bicubic. Every variant is exported by `npm run test:models` (test/models/).
const ARCHS = ['efficientnet_b0', 'efficientnet_b1'] as const;

describe('labeler model export (torchvision EfficientNets, random weights)', () => {
  let dir: string;
  let recipes: Record<string, TorchvisionRecipe>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-export-'));
    recipes = await torchvisionRecipes(ARCHS);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const arch of ARCHS) {
    it(`exports ${arch} with torchvision's own preprocessing and labels a photo with it by name`, async () => {
      const env = { LABELER_MODELS_DIR: join(dir, 'cache') };
      const run = await runCli(['model', 'export', '--arch', arch, '--weights', 'random'], env);
      assert.equal(run.code, 0, run.stderr);
      const report = JSON.parse(run.stdout.trim().split('\n').pop() ?? '') as { dir: string; macs: number };
      assert.equal(report.dir, join(dir, 'cache', `${arch}-random`));
      assert.ok(report.macs > 0);
      const recipe = recipes[arch] as TorchvisionRecipe;
      await checkExportedModel(report.dir, recipe);
      await labelCat(`${arch}-random`, recipe.categories, env);
    });
  }

  it('labels with an exported folder named by path', async () => {
    const recipe = recipes.efficientnet_b0 as TorchvisionRecipe;
    await labelCat(join(dir, 'cache', 'efficientnet_b0-random'), recipe.categories);
  });

  it('runs a graph exported with a fixed batch of 1 (as some public exports are) image by image', async () => {
    const source = join(dir, 'cache', 'efficientnet_b0-random');
    const fixed = join(dir, 'fixed-batch');
    await mkdir(fixed);
    const pin = `
import onnx, sys
m = onnx.load(sys.argv[1])
for v in (m.graph.input[0], m.graph.output[0]):
    d = v.type.tensor_type.shape.dim[0]
    d.ClearField("dim_param")
    d.dim_value = 1
onnx.save(m, sys.argv[2])
`;
    await promisify(execFile)('/usr/bin/python3', [
      '-c',
      pin,
      join(source, 'model.onnx'),
      join(fixed, 'model.onnx'),
    ]);
    const bytes = await readFile(join(fixed, 'model.onnx'));
    const manifest = JSON.parse(await readFile(join(source, 'manifest.json'), 'utf8'));
    manifest.sha256 = createHash('sha256').update(bytes).digest('hex');
    await writeFile(join(fixed, 'manifest.json'), JSON.stringify(manifest));
    await copyFile(join(source, 'labels.txt'), join(fixed, 'labels.txt'));
    const samples = join(DEFAULT_MODEL_DIR, 'samples');
    const run = await runCli([
      'label',
      '--model',
      fixed,
      '--batch-size',
      '4',
      '--format',
      'jsonl',
      CAT_JPEG,
      join(samples, 'test-00000.png'),
      join(samples, 'test-00001.png'),
    ]);
    assert.equal(run.code, 0, run.stderr);
    const rows = jsonLines(run.stdout);
    assert.equal(rows.length, 3);
    for (const row of rows) assert.equal(row.status, 'ok', JSON.stringify(row));
  });

  it('says how to install torch (model/export-needs-torch, exit 3) when the interpreter lacks it', async () => {
    // -S leaves out site-packages, where apt's python3-torch lives: the same interpreter without torch.
    const python = join(dir, 'python-without-torch');
    await writeFile(python, '#!/bin/sh\nexec /usr/bin/python3 -S "$@"\n');
    await chmod(python, 0o755);
    const out = join(dir, 'never');
    const run = await runCli(
      ['model', 'export', '--arch', 'efficientnet_b0', '--weights', 'random', '--out', out],
      {
        LABELER_PYTHON: python,
      },
    );
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /\[model\/export-needs-torch\]/);
    assert.match(run.stderr, /apt-get install -y python3-torch python3-torchvision python3-onnx/);
    await assert.rejects(readFile(join(out, 'manifest.json')), { code: 'ENOENT' });
  });

  it('says the same when there is no interpreter at all', async () => {
    const run = await runCli(['model', 'export', '--arch', 'efficientnet_b0', '--out', join(dir, 'never')], {
      LABELER_PYTHON: join(dir, 'no-such-python'),
    });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /\[model\/export-needs-torch\] no Python interpreter at/);
  });

  it('refuses an unknown architecture as a usage error (exit 2) before starting Python', async () => {
    const run = await runCli(['model', 'export', '--arch', 'efficientnet_b9', '--out', join(dir, 'never')], {
      LABELER_PYTHON: join(dir, 'no-such-python'),
    });
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /--arch must be one of efficientnet_b0, .*efficientnet_v2_l, got "efficientnet_b9"/,
    );
  });
});
