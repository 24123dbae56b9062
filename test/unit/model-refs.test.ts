import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_IMAGE_LIMITS, preprocessInto } from '../../shared/image/preprocess.ts';
import { manifestSchema } from '../../shared/model/manifest.ts';
import { modelsCacheDir, resolveModelDir } from '../../shared/model/model-store.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { pngFromPixels, spec } from '../helpers/images.ts';

describe('resolveModelDir: --model and MODEL_DIR by folder or by name', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-refs-'));
    env = { LABELER_MODELS_DIR: join(dir, 'cache') };
    await mkdir(join(dir, 'cache', 'efficientnet_b3'), { recursive: true });
    await mkdir(join(dir, 'folder'), { recursive: true });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('takes nothing as the bundled model', () => {
    assert.equal(resolveModelDir(undefined, env), DEFAULT_MODEL_DIR);
    assert.equal(resolveModelDir('', env), DEFAULT_MODEL_DIR);
  });

  it('takes an existing folder as that folder', () => {
    assert.equal(resolveModelDir(join(dir, 'folder'), env), join(dir, 'folder'));
  });

  it('takes a bare name as the folder of that name in the models cache', () => {
    assert.equal(resolveModelDir('efficientnet_b3', env), join(dir, 'cache', 'efficientnet_b3'));
  });

  it('prefers a folder in the working directory over a pulled model of the same name', async () => {
    const cwd = process.cwd();
    await mkdir(join(dir, 'work', 'efficientnet_b3'), { recursive: true });
    process.chdir(join(dir, 'work'));
    try {
      assert.equal(resolveModelDir('efficientnet_b3', env), join(dir, 'work', 'efficientnet_b3'));
    } finally {
      process.chdir(cwd);
    }
  });

  it('refuses an unknown name with model/not-found and says how to get one', () => {
    assert.throws(
      () => resolveModelDir('efficientnet_b9', env),
      (e: Error & { code?: string }) =>
        e.code === 'model/not-found' && /labeler model pull efficientnet_b9/.test(e.message),
    );
  });

  it('leaves a missing path (not a name) to fail as a folder', () => {
    assert.equal(resolveModelDir('./nowhere/model', env), join(process.cwd(), 'nowhere', 'model'));
  });

  it('puts the cache under XDG_CACHE_HOME without LABELER_MODELS_DIR', () => {
    assert.equal(modelsCacheDir({ XDG_CACHE_HOME: '/x/cache' }), '/x/cache/labeler/models');
  });
});

describe('preprocessing: an explicit resize size (torchvision Resize + CenterCrop)', () => {
  // 4x4 grey ramp: every pixel distinct, so the crop shows which pixels it kept.
  const pixels = Array.from({ length: 16 }, (_, i) => [i * 10, i * 10, i * 10]).flat();

  it('resizes the shorter side to resizeSize, then cuts the centre', async () => {
    const png = await pngFromPixels(pixels, 4, 4, 3);
    const s = spec({
      resize: {
        policy: 'shorter-side-then-center-crop',
        cropFraction: 0.5,
        resizeSize: 4,
        kernel: 'nearest',
      },
    });
    const out = new Float32Array(12);
    await preprocessInto(png, s, DEFAULT_IMAGE_LIMITS, out, 0);
    // At 4 px nothing is resampled: the crop is the centre 2x2, pixels 5, 6, 9, 10.
    assert.deepEqual(
      Array.from(out.subarray(0, 4)).map((v) => Math.round(v * 255)),
      [50, 60, 90, 100],
    );
  });

  it('wins over cropFraction when the two disagree', async () => {
    const png = await pngFromPixels(pixels, 4, 4, 3);
    const s = spec({
      resize: { policy: 'shorter-side-then-center-crop', cropFraction: 1, resizeSize: 4, kernel: 'nearest' },
    });
    const out = new Float32Array(12);
    await preprocessInto(png, s, DEFAULT_IMAGE_LIMITS, out, 0);
    assert.deepEqual(
      Array.from(out.subarray(0, 4)).map((v) => Math.round(v * 255)),
      [50, 60, 90, 100],
    );
  });

  it('is refused by the manifest schema when smaller than the crop', () => {
    const manifest = {
      schemaVersion: 1,
      id: 'm',
      version: '1',
      file: 'model.onnx',
      sha256: '0'.repeat(64),
      labelsFile: 'labels.txt',
      input: {
        ...spec({ width: 224, height: 224 }),
        resize: { policy: 'shorter-side-then-center-crop', cropFraction: 0.875, resizeSize: 200 },
      },
      output: { name: 'logits', kind: 'logits' },
    };
    const parsed = manifestSchema.safeParse(manifest);
    assert.equal(parsed.success, false);
    assert.match(JSON.stringify(parsed.error?.issues), /resizeSize/);
  });
});
