import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImageError } from '../../shared/errors.ts';
import { DEFAULT_IMAGE_LIMITS, type ImageLimits, preprocessInto } from '../../shared/image/preprocess.ts';
import { pngHeaderOnly, solidImage, spec } from '../helpers/images.ts';

async function codeOf(bytes: Uint8Array, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): Promise<string> {
  const out = new Float32Array(12);
  const error = await preprocessInto(bytes, spec(), limits, out, 0).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof ImageError, `expected an ImageError, got ${String(error)}`);
  assert.equal(error.permanent, true);
  return error.code;
}

describe('bad input is refused with a stable code', () => {
  it('zero bytes -> image/empty', async () => {
    assert.equal(await codeOf(new Uint8Array(0)), 'image/empty');
  });

  it('bytes over the limit -> image/too-large', async () => {
    const png = await solidImage(16, 16, '#123456').png().toBuffer();
    assert.equal(await codeOf(png, { ...DEFAULT_IMAGE_LIMITS, maxBytes: png.length - 1 }), 'image/too-large');
  });

  it('text that is no image -> image/unsupported-format', async () => {
    assert.equal(await codeOf(Buffer.from('hello, this is not an image')), 'image/unsupported-format');
  });

  it('SVG (which can reference external resources) -> image/unsupported-format', async () => {
    const svg =
      '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><image href="http://127.0.0.1/x.png"/></svg>';
    assert.equal(await codeOf(Buffer.from(svg)), 'image/unsupported-format');
    assert.equal(await codeOf(Buffer.from(`<?xml version="1.0"?>\n${svg}`)), 'image/unsupported-format');
  });

  it('BMP and HEIC -> image/unsupported-format', async () => {
    assert.equal(await codeOf(Buffer.from('BM\0\0\0\0\0\0\0\0\0\0')), 'image/unsupported-format');
    const heic = Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from('ftypheic'), Buffer.alloc(16)]);
    assert.equal(await codeOf(heic), 'image/unsupported-format');
  });

  it('a format the deployment does not allow -> image/unsupported-format', async () => {
    const webp = await solidImage(4, 4, '#00ff00').webp().toBuffer();
    assert.equal(
      await codeOf(webp, { ...DEFAULT_IMAGE_LIMITS, formats: ['jpeg', 'png'] }),
      'image/unsupported-format',
    );
  });

  it('a truncated JPEG -> image/decode-failed', async () => {
    const jpeg = await solidImage(64, 64, '#804020').jpeg().toBuffer();
    assert.equal(await codeOf(jpeg.subarray(0, Math.floor(jpeg.length / 2))), 'image/decode-failed');
  });

  it('a JPEG with a corrupt header -> image/decode-failed', async () => {
    const jpeg = Buffer.from(await solidImage(64, 64, '#804020').jpeg().toBuffer());
    jpeg.fill(0xee, 3, 200);
    assert.equal(await codeOf(jpeg), 'image/decode-failed');
  });

  it('a 40000x40000 PNG -> image/too-many-pixels, from its header alone', async () => {
    // The pixel data is a few bytes: decoding it would fail with image/decode-failed.
    assert.equal(await codeOf(pngHeaderOnly(40000, 40000)), 'image/too-many-pixels');
  });

  it('the pixel limit is configurable', async () => {
    const png = await solidImage(100, 100, '#ffffff').png().toBuffer();
    assert.equal(await codeOf(png, { ...DEFAULT_IMAGE_LIMITS, maxPixels: 9999 }), 'image/too-many-pixels');
  });
});
