import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import type { InputSpec } from '../../shared/model/manifest.ts';

/** A lossless PNG from raw pixels (row-major, `channels` bytes per pixel). */
export function pngFromPixels(pixels: number[], width: number, height: number, channels: 1 | 2 | 3 | 4) {
  return sharp(Buffer.from(pixels), { raw: { width, height, channels } }).png().toBuffer();
}

export function solidImage(width: number, height: number, colour: string) {
  return sharp({ create: { width, height, channels: 3, background: colour } });
}

export function spec(overrides: Partial<InputSpec> = {}): InputSpec {
  return {
    name: 'input',
    layout: 'NCHW',
    width: 2,
    height: 2,
    colorOrder: 'RGB',
    resize: { policy: 'shorter-side-then-center-crop', cropFraction: 1, kernel: 'nearest' },
    scale: 1 / 255,
    mean: [0, 0, 0],
    std: [1, 1, 1],
    color: 'stored',
    background: [0, 0, 0],
    ...overrides,
  };
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/**
 * A PNG whose header claims width x height but whose pixel data is a few bytes:
 * only a header-based check can classify it as too big; decoding it would fail.
 */
export function pngHeaderOnly(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(width + 1))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
