import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { readJpegHeader } from '../../shared/image/jpeg-header.ts';

// preprocessInto reads JPEG headers itself instead of a second libvips load: it must agree
// with libvips (sharp's metadata) wherever it answers, and leave the rest to libvips.
const W = 30;
const H = 20;
const pixels = Buffer.alloc(W * H * 3, 90);
const raw = () => sharp(pixels, { raw: { width: W, height: H, channels: 3 } });

async function agrees(bytes: Buffer, what: string) {
  const header = readJpegHeader(bytes);
  assert.ok(header, `${what}: read`);
  const meta = await sharp(bytes).metadata();
  assert.equal(header.width, meta.width, what);
  assert.equal(header.height, meta.height, what);
  assert.equal(header.orientation, meta.orientation ?? 1, what);
  assert.equal(header.components === 4, meta.space === 'cmyk', what);
}

describe('JPEG header read in JavaScript', () => {
  it('agrees with libvips on size, EXIF orientation 1-8 and components', async () => {
    for (let orientation = 1; orientation <= 8; orientation++) {
      await agrees(await raw().withMetadata({ orientation }).jpeg().toBuffer(), `orientation ${orientation}`);
    }
    await agrees(await raw().jpeg({ progressive: true }).toBuffer(), 'progressive');
    await agrees(await raw().toColourspace('cmyk').jpeg().toBuffer(), 'CMYK');
    await agrees(await raw().toColourspace('b-w').jpeg().toBuffer(), 'greyscale');
    await agrees(
      await raw().withIccProfile('p3').withMetadata({ orientation: 6 }).jpeg().toBuffer(),
      'ICC + EXIF',
    );
  });

  it('leaves truncated and foreign streams to libvips', async () => {
    const jpeg = await raw().withMetadata({ orientation: 6 }).jpeg().toBuffer();
    for (const cut of [3, 10, 40])
      assert.equal(readJpegHeader(jpeg.subarray(0, cut)), undefined, `cut at ${cut}`);
    assert.equal(readJpegHeader(await raw().png().toBuffer()), undefined);
    // A scan before any frame header is not a JPEG it can read.
    assert.equal(readJpegHeader(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0x00, 0x02, 0x00])), undefined);
  });
});
