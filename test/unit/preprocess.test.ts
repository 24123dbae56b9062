import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { DEFAULT_IMAGE_LIMITS, preprocessInto } from '../../shared/image/preprocess.ts';
import type { InputSpec } from '../../shared/model/manifest.ts';
import { pngFromPixels, solidImage, spec } from '../helpers/images.ts';

async function tensorOf(bytes: Uint8Array, s: InputSpec): Promise<number[]> {
  const out = new Float32Array(3 * s.width * s.height);
  await preprocessInto(bytes, s, DEFAULT_IMAGE_LIMITS, out, 0);
  return Array.from(out);
}

function assertClose(actual: number[], expected: number[], tolerance = 1e-6) {
  assert.equal(actual.length, expected.length, 'tensor length');
  actual.forEach((v, i) => {
    assert.ok(Math.abs(v - (expected[i] as number)) <= tolerance, `index ${i}: ${v} vs ${expected[i]}`);
  });
}

// 2x2 RGB: red, green / blue, (10, 20, 30)
const PIXELS = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30];

describe('preprocessing: layout and normalisation', () => {
  const norm = {
    scale: 1 / 255,
    mean: [0.1, 0.2, 0.3] as [number, number, number],
    std: [0.5, 0.25, 2] as [number, number, number],
  };
  const n = (v: number, c: 0 | 1 | 2) => (v / 255 - norm.mean[c]) / norm.std[c];

  it('writes NCHW planes with (x * scale - mean) / std per channel', async () => {
    const png = await pngFromPixels(PIXELS, 2, 2, 3);
    const t = await tensorOf(png, spec(norm));
    assertClose(t, [
      n(255, 0),
      n(0, 0),
      n(0, 0),
      n(10, 0),
      n(0, 1),
      n(255, 1),
      n(0, 1),
      n(20, 1),
      n(0, 2),
      n(0, 2),
      n(255, 2),
      n(30, 2),
    ]);
  });

  it('writes NHWC pixels interleaved', async () => {
    const png = await pngFromPixels(PIXELS, 2, 2, 3);
    const t = await tensorOf(png, spec({ ...norm, layout: 'NHWC' }));
    assertClose(t, [
      n(255, 0),
      n(0, 1),
      n(0, 2),
      n(0, 0),
      n(255, 1),
      n(0, 2),
      n(0, 0),
      n(0, 1),
      n(255, 2),
      n(10, 0),
      n(20, 1),
      n(30, 2),
    ]);
  });

  it('swaps to BGR, with mean and std given in the model channel order', async () => {
    const png = await pngFromPixels(PIXELS, 2, 2, 3);
    const t = await tensorOf(png, spec({ ...norm, colorOrder: 'BGR' }));
    assertClose(t, [
      n(0, 0),
      n(0, 0),
      n(255, 0),
      n(30, 0),
      n(0, 1),
      n(255, 1),
      n(0, 1),
      n(20, 1),
      n(255, 2),
      n(0, 2),
      n(0, 2),
      n(10, 2),
    ]);
  });

  it('writes at the given offset and leaves the rest of the batch alone', async () => {
    const png = await pngFromPixels(PIXELS, 2, 2, 3);
    const out = new Float32Array(24).fill(-7);
    await preprocessInto(png, spec(), DEFAULT_IMAGE_LIMITS, out, 12);
    assert.deepEqual(Array.from(out.subarray(0, 12)), new Array(12).fill(-7));
    assert.equal(out[12], 1);
    assert.equal(out[23], Math.fround(30 / 255));
  });
});

describe('preprocessing: resize and centre crop', () => {
  it('crops the centre of the longer side without resizing when the shorter side already fits', async () => {
    // 4x2 grey columns 0, 50, 100, 150 -> shorter side 2, centre crop keeps columns 1 and 2.
    const png = await pngFromPixels([0, 50, 100, 150, 0, 50, 100, 150], 4, 2, 1);
    const t = await tensorOf(png, spec());
    const c = [50, 100, 50, 100].map((v) => v / 255);
    assertClose(t, [...c, ...c, ...c], 1e-6);
  });

  it('resizes the shorter side to size / cropFraction before cropping', async () => {
    // 4x4 with cropFraction 0.5: shorter side 2 / 0.5 = 4, so no resize, then the centre 2x2.
    const grid = Array.from({ length: 16 }, (_, i) => i * 10);
    const png = await pngFromPixels(grid, 4, 4, 1);
    const s = spec({
      resize: { policy: 'shorter-side-then-center-crop', cropFraction: 0.5, kernel: 'nearest' },
    });
    const t = await tensorOf(png, s);
    const c = [50, 60, 90, 100].map((v) => v / 255);
    assertClose(t, [...c, ...c, ...c]);
  });

  it('downsizes a wide image so its shorter side matches, keeping the aspect ratio', async () => {
    // 8x4: four 2x... quadrant colours along x (each 2 px wide); shorter 4 -> 2 means x/2:
    // 4x2 after resize, centre crop 2x2 keeps the middle two stripes.
    const stripes = [0, 0, 60, 60, 120, 120, 180, 180];
    const png = await pngFromPixels([...stripes, ...stripes, ...stripes, ...stripes], 8, 4, 1);
    const s = spec({
      resize: { policy: 'shorter-side-then-center-crop', cropFraction: 1, kernel: 'linear' },
    });
    const t = await tensorOf(png, s);
    const c = [60, 120, 60, 120].map((v) => v / 255);
    assertClose(t, [...c, ...c, ...c], 1.5 / 255);
  });
});

describe('preprocessing: orientation, colour, alpha, depth, formats', () => {
  it('applies EXIF orientation 6 (rotate 90 degrees clockwise) to a JPEG', async () => {
    // 16x8: left half black, right half white. Rotated 90 CW: 8x16, top black, bottom white.
    const half = [...new Array(8).fill(0), ...new Array(8).fill(255)];
    const raw = Buffer.from(Array.from({ length: 8 }, () => half).flat());
    const jpeg = await sharp(raw, { raw: { width: 16, height: 8, channels: 1 } })
      .jpeg({ quality: 100 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const s = spec({ width: 8, height: 16 });
    const t = await tensorOf(jpeg, s);
    const red = t.slice(0, 128);
    const topRows = red.slice(0, 48);
    const bottomRows = red.slice(80, 128);
    assert.ok(
      topRows.every((v) => v < 0.1),
      'top is black',
    );
    assert.ok(
      bottomRows.every((v) => v > 0.9),
      'bottom is white',
    );
  });

  it('repeats a grey image into three identical channels', async () => {
    const png = await pngFromPixels([100, 100, 100, 100], 2, 2, 1);
    const t = await tensorOf(png, spec());
    assertClose(t, new Array(12).fill(100 / 255));
  });

  it('composites transparency onto the manifest background', async () => {
    // white fully transparent, white half transparent, opaque red, opaque blue
    const png = await pngFromPixels(
      [255, 255, 255, 0, 255, 255, 255, 128, 255, 0, 0, 255, 0, 0, 255, 255],
      2,
      2,
      4,
    );
    const black = await tensorOf(png, spec());
    assertClose(black.slice(0, 4), [0, 128 / 255, 1, 0], 1.5 / 255);
    const grey = await tensorOf(png, spec({ background: [50, 50, 50] }));
    assert.ok(Math.abs((grey[0] as number) - 50 / 255) < 1.5 / 255, 'transparent pixel takes the background');
  });

  it('reduces 16-bit PNGs to 8 bits', async () => {
    const png = await solidImage(2, 2, '#ff8000').toColourspace('rgb16').png().toBuffer();
    assert.equal((await sharp(png).metadata()).depth, 'ushort');
    const t = await tensorOf(png, spec());
    assertClose([t[0], t[4], t[8]] as number[], [1, 128 / 255, 0], 1.5 / 255);
  });

  it('converts CMYK JPEGs to RGB (red stays red)', async () => {
    const jpeg = await solidImage(8, 8, '#ff0000').toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer();
    assert.equal((await sharp(jpeg).metadata()).space, 'cmyk');
    const t = await tensorOf(jpeg, spec());
    assert.ok(
      (t[0] as number) > 0.8 && (t[4] as number) < 0.25 && (t[8] as number) < 0.25,
      `got ${t[0]},${t[4]},${t[8]}`,
    );
  });

  it('takes the first frame of an animated GIF', async () => {
    const red = await solidImage(4, 4, '#ff0000').png().toBuffer();
    const blue = await solidImage(4, 4, '#0000ff').png().toBuffer();
    const gif = await sharp([red, blue], { join: { animated: true } })
      .gif()
      .toBuffer();
    assert.equal((await sharp(gif).metadata()).pages, 2);
    const t = await tensorOf(gif, spec());
    assertClose([t[0], t[4], t[8]] as number[], [1, 0, 0], 2 / 255);
  });

  for (const format of ['jpeg', 'webp', 'tiff', 'avif'] as const) {
    it(`decodes ${format}`, async () => {
      const bytes = await solidImage(8, 8, '#00ff00')[format]({ quality: 100 }).toBuffer();
      const out = new Float32Array(12);
      const info = await preprocessInto(bytes, spec(), DEFAULT_IMAGE_LIMITS, out, 0);
      assert.equal(info.format, format);
      assert.ok(
        (out[4] as number) > 0.9 && (out[0] as number) < 0.1,
        `green channel high: ${Array.from(out)}`,
      );
    });
  }
});
