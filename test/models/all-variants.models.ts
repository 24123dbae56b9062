import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EFFICIENTNET_ARCHS, exportEfficientNet } from '../../shared/model/export.ts';
import {
  checkExportedModel,
  labelCat,
  type TorchvisionRecipe,
  torchvisionRecipes,
} from '../helpers/models.ts';

// `npm run test:models`: every torchvision EfficientNet exported with random weights into a
// temporary folder, held to torchvision's recipe and to its own graph (onnxruntime-node),
// and `labeler label` run on a photo with the smallest and the largest B. Too slow for
// `npm test` on two cores (about 1.3 GB of ONNX, minutes of export); CI runs it after it.
const LABELED = new Set(['efficientnet_b0', 'efficientnet_b7']);

describe('every EfficientNet variant exports and runs (random weights)', () => {
  let dir: string;
  let recipes: Record<string, TorchvisionRecipe>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-variants-'));
    recipes = await torchvisionRecipes(EFFICIENTNET_ARCHS);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const arch of EFFICIENTNET_ARCHS) {
    it(`${arch}: manifest matches torchvision and the graph${LABELED.has(arch) ? '; labeler label runs it' : ''}`, async (t) => {
      const started = performance.now();
      const out = join(dir, arch);
      const report = await exportEfficientNet({ arch, weights: 'random', out, stderr: 'ignore' });
      const exported = performance.now();
      const recipe = recipes[arch] as TorchvisionRecipe;
      await checkExportedModel(out, recipe);
      if (LABELED.has(arch)) await labelCat(out, recipe.categories);
      t.diagnostic(
        `${arch}: ${recipe.crop} px, ${(report.bytes / 1e6).toFixed(0)} MB, ${(report.macs ?? 0) / 1e9} GMAC; ` +
          `export ${((exported - started) / 1000).toFixed(0)} s, checks ${((performance.now() - exported) / 1000).toFixed(0)} s`,
      );
      assert.equal(report.arch, arch);
      await rm(out, { recursive: true, force: true });
    });
  }
});
