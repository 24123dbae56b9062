import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { DEFAULT_IMAGE_LIMITS, preprocessInto } from '../../shared/image/preprocess.ts';
import type { InputSpec } from '../../shared/model/manifest.ts';
import { spec as baseSpec } from '../helpers/images.ts';

// libvips decodes a JPEG at 1/2, 1/4 or 1/8 scale straight from its DCT coefficients when
// the resize target is small ("shrink-on-load"): for a 12 MP photo and a 224 px model that
// is most of the decode time. sharp only does it when nothing forces the full-size image
// first; an extract() together with autoOrient() did, for every EXIF-rotated photo.

const WIDTH = 1600;
const HEIGHT = 1200;
const SPEC: InputSpec = baseSpec({
  width: 224,
  height: 224,
  resize: { policy: 'shorter-side-then-center-crop', cropFraction: 0.875, kernel: 'linear' },
});

let pixels: Buffer;
let upright: Buffer;
let rotated: Buffer;

async function tensorOf(bytes: Uint8Array): Promise<Float32Array> {
  const out = new Float32Array(3 * SPEC.width * SPEC.height);
  await preprocessInto(bytes, SPEC, DEFAULT_IMAGE_LIMITS, out, 0);
  return out;
}

before(async () => {
  // Detail at every scale, so decoding at a lower scale visibly changes the result.
  pixels = Buffer.alloc(WIDTH * HEIGHT * 3);
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) {
      const i = (y * WIDTH + x) * 3;
      pixels[i] = (x * 7 + y * 3) % 256;
      pixels[i + 1] = ((x ^ y) * 5) % 256;
      pixels[i + 2] = Math.round(127.5 + 127.5 * Math.sin(x / 9) * Math.cos(y / 13));
    }
  }
  const raw = { raw: { width: WIDTH, height: HEIGHT, channels: 3 as const } };
  upright = await sharp(pixels, raw).jpeg({ quality: 90 }).toBuffer();
  // The same JPEG data with EXIF orientation 6: shown rotated 90 degrees clockwise.
  rotated = await sharp(pixels, raw).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toBuffer();
});

describe('preprocessing large JPEGs: shrink-on-load', () => {
  it('decodes a JPEG much larger than the input at reduced scale, not in full', async () => {
    const full = new Float32Array(3 * SPEC.width * SPEC.height);
    // The same steps from pixels that are already decoded: no shrink-on-load possible.
    const decoded = await sharp(upright).raw().toBuffer();
    const png = await sharp(decoded, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } })
      .png({ compressionLevel: 0 })
      .toBuffer();
    await preprocessInto(png, SPEC, DEFAULT_IMAGE_LIMITS, full, 0);
    const fromJpeg = await tensorOf(upright);
    let maxDiff = 0;
    for (let i = 0; i < full.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs((full[i] as number) - (fromJpeg[i] as number)));
    }
    assert.ok(maxDiff > 0.02, `the JPEG path matches a full decode (max diff ${maxDiff}): no shrink-on-load`);
  });

  it('decodes an EXIF-rotated JPEG at reduced scale too: its tensor is the upright one turned 90 degrees', async () => {
    const a = await tensorOf(upright);
    const b = await tensorOf(rotated);
    const n = SPEC.width;
    let mismatches = 0;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < n; y++) {
        for (let x = 0; x < n; x++) {
          // Turning 90 degrees clockwise: shown (x, y) is stored (y, n - 1 - x).
          const want = a[c * n * n + (n - 1 - x) * n + y] as number;
          const got = b[c * n * n + y * n + x] as number;
          if (Math.abs(want - got) > 1e-6) mismatches++;
        }
      }
    }
    // A full-size decode and rotation before resizing (what an extract() after autoOrient()
    // forces) resamples different pixels: thousands of values differ.
    assert.equal(mismatches, 0);
  });
});
