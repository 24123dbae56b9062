import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { loadModelBundle } from '../../shared/model/manifest.ts';
import { PACKAGE_ROOT } from '../../shared/paths.ts';
import { jsonLines, runCli } from './cli.ts';

/** A real photo (a cat), as a user would label. */
export const CAT_JPEG = join(
  PACKAGE_ROOT,
  'node_modules',
  '@stdlib',
  'datasets-img-locomotion-house-cat',
  'data',
  'image.jpg',
);

export interface TorchvisionRecipe {
  readonly crop: number;
  readonly resize: number;
  readonly interpolation: string;
  readonly mean: number[];
  readonly std: number[];
  readonly categories: string[];
}

/**
 * Reads each architecture's evaluation recipe straight from torchvision
 * (weights.transforms(), weights.meta), independently of the exporter, so a test can hold
 * the manifest to it. Fails, never skips, when torch is missing: the exporter needs it too.
 */
export async function torchvisionRecipes(
  archs: readonly string[],
): Promise<Record<string, TorchvisionRecipe>> {
  const script = `
import json, sys
from torchvision.models import get_model_weights
out = {}
for arch in sys.argv[1:]:
    w = get_model_weights(arch).DEFAULT
    t = w.transforms()
    out[arch] = {"crop": t.crop_size[0], "resize": t.resize_size[0], "interpolation": t.interpolation.value,
                 "mean": list(t.mean), "std": list(t.std), "categories": list(w.meta["categories"])}
print(json.dumps(out))
`;
  try {
    const { stdout } = await promisify(execFile)('/usr/bin/python3', ['-c', script, ...archs], {
      maxBuffer: 64 * 1024 * 1024,
    });
    return JSON.parse(stdout) as Record<string, TorchvisionRecipe>;
  } catch (error) {
    assert.fail(
      `these tests need torch and torchvision under /usr/bin/python3 (apt-get install -y python3-torch ` +
        `python3-torchvision python3-onnx; npm test installs them: test/install-prerequisites.sh): ${(error as Error).message}`,
    );
  }
}

const KERNEL_OF: Record<string, string> = { bilinear: 'linear', bicubic: 'cubic', nearest: 'nearest' };

/**
 * Holds an exported folder to torchvision's recipe and to its own graph: manifest values,
 * labels, checksum, the ONNX input [batch, 3, crop, crop] with a symbolic batch axis and
 * 1,000 outputs, and one real inference at batch 2.
 */
export async function checkExportedModel(dir: string, recipe: TorchvisionRecipe): Promise<void> {
  const bundle = await loadModelBundle(dir);
  const { input, output } = bundle.manifest;
  assert.equal(input.width, recipe.crop);
  assert.equal(input.height, recipe.crop);
  assert.equal(input.resize.resizeSize, recipe.resize);
  assert.equal(input.resize.kernel, KERNEL_OF[recipe.interpolation]);
  assert.deepEqual(input.mean, recipe.mean);
  assert.deepEqual(input.std, recipe.std);
  assert.deepEqual(bundle.labels, recipe.categories);
  assert.equal(bundle.labels.length, 1000);

  const session = await ort.InferenceSession.create(await readFile(join(dir, bundle.manifest.file)));
  try {
    const inputMeta = session.inputMetadata.find((m) => m.name === input.name);
    const outputMeta = session.outputMetadata.find((m) => m.name === output.name);
    assert.ok(inputMeta?.isTensor && outputMeta?.isTensor, 'input and output are tensors');
    assert.equal(
      typeof inputMeta.shape[0],
      'string',
      `batch axis is symbolic: [${inputMeta.shape.join(', ')}]`,
    );
    assert.deepEqual(inputMeta.shape.slice(1), [3, recipe.crop, recipe.crop]);
    assert.equal(typeof outputMeta.shape[0], 'string');
    assert.equal(outputMeta.shape[1], 1000);
    const pixels = 3 * recipe.crop * recipe.crop;
    const result = await session.run({
      [input.name]: new ort.Tensor('float32', new Float32Array(2 * pixels).fill(0.5), [
        2,
        3,
        recipe.crop,
        recipe.crop,
      ]),
    });
    assert.deepEqual(result[output.name]?.dims, [2, 1000]);
  } finally {
    await session.release();
  }
}

/** Runs `labeler label --model <ref>` on the cat photo: one ok row with ImageNet class names. */
export async function labelCat(modelRef: string, categories: readonly string[], env: NodeJS.ProcessEnv = {}) {
  const run = await runCli(
    ['label', '--model', modelRef, '--format', 'jsonl', '--top-k', '3', CAT_JPEG],
    env,
  );
  assert.equal(run.code, 0, run.stderr);
  const rows = jsonLines(run.stdout);
  assert.equal(rows.length, 1);
  assert.equal(rows[0]?.status, 'ok', JSON.stringify(rows[0]));
  const labels = rows[0]?.labels as Array<{ label: string }>;
  assert.equal(labels.length, 3);
  for (const l of labels) assert.ok(categories.includes(l.label), `${l.label} is an ImageNet class`);
  return run;
}
