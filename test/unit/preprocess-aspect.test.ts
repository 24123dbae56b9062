import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { DEFAULT_IMAGE_LIMITS, preprocessInto } from '../../shared/image/preprocess.ts';
import type { InputSpec } from '../../shared/model/manifest.ts';
import { spec } from '../helpers/images.ts';

const RED = [255, 0, 0];
const GREEN = [0, 255, 0];
const BLUE = [0, 0, 255];

/**
 * A thin RGB strip in thirds (red, green, blue) along its length: the
 * centre crop of any faithful resize sees only green; a squashed one blends colours.
 */
function thirdsStrip(length: number, direction: 'tall' | 'wide', thickness = 1) {
  const pixels = Buffer.alloc(length * thickness * 3);
  for (let i = 0; i < length; i++) {
    const colour = i < length / 3 ? RED : i < (2 * length) / 3 ? GREEN : BLUE;
    for (let j = 0; j < thickness; j++) {
      pixels.set(colour, (direction === 'tall' ? i * thickness + j : j * length + i) * 3);
    }
  }
  const [width, height] = direction === 'tall' ? [thickness, length] : [length, thickness];
  return sharp(pixels, { raw: { width, height, channels: 3 } });
}

async function tensorOf(bytes: Uint8Array, s: InputSpec): Promise<Float32Array> {
  const out = new Float32Array(3 * s.width * s.height);
  await preprocessInto(bytes, s, DEFAULT_IMAGE_LIMITS, out, 0);
  return out;
}

/** In NCHW with scale 1/255, mean 0, std 1: every pixel of the crop is pure green. */
function assertAllGreen(tensor: Float32Array, s: InputSpec) {
  const plane = s.width * s.height;
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < plane; p++) {
      const v = tensor[c * plane + p] as number;
      assert.ok(Math.abs(v - (c === 1 ? 1 : 0)) < 1e-6, `channel ${c} pixel ${p} is ${v}`);
    }
  }
}

// The bundled model's geometry: 28 x 28, shorter side resized to 28, linear kernel.
const MODEL = spec({
  width: 28,
  height: 28,
  resize: { policy: 'shorter-side-then-center-crop', cropFraction: 1, kernel: 'linear' },
});

describe('preprocessing: extreme aspect ratios under the pixel limit', () => {
  it('labels a 1 x 3,000,000 PNG from its centre instead of failing as corrupt', async () => {
    const png = await thirdsStrip(3_000_000, 'tall').png().toBuffer();
    assertAllGreen(await tensorOf(png, MODEL), MODEL);
  });

  it('labels a 10,000,000 x 1 PNG from its centre instead of failing as corrupt', async () => {
    const png = await thirdsStrip(10_000_000, 'wide').png().toBuffer();
    assertAllGreen(await tensorOf(png, MODEL), MODEL);
  });

  it('crops the band in the EXIF-oriented frame (a wide TIFF stored sideways)', async () => {
    // Stored 300,000 x 1, orientation 6 (rotate 90° clockwise): shown as 1 x 300,000.
    const tiff = await thirdsStrip(300_000, 'wide')
      .withMetadata({ orientation: 6 })
      .tiff({ compression: 'deflate' })
      .toBuffer();
    const meta = await sharp(tiff).metadata();
    assert.equal(meta.autoOrient?.height, 300_000, 'the fixture really is rotated');
    assertAllGreen(await tensorOf(tiff, MODEL), MODEL);
  });

  it('shrinks a strip thicker than the crop (downscaling margin)', async () => {
    // 4 x 300,000 to a 1 x 1 crop: a quarter scale, 75,000 px long before cropping.
    const s = spec({
      width: 1,
      height: 1,
      resize: { policy: 'shorter-side-then-center-crop', cropFraction: 1, kernel: 'lanczos3' },
    });
    const png = await thirdsStrip(300_000, 'tall', 4).png().toBuffer();
    assertAllGreen(await tensorOf(png, s), s);
  });
});
