// CPU time to preprocess a 12 MP JPEG (4000x3000) into B0's 224 px tensor, upright and with
// EXIF orientation 6 (a phone's portrait photo): whether JPEG shrink-on-load is in use shows
// as a several-fold difference. CPU time, not wall time, so other work on the cores matters less.
//
//   UV_THREADPOOL_SIZE=1 node --import tsx bench/large-jpeg.ts [runs]
//
// Measured before and after decision 0016 by running it with shared/image/preprocess.ts
// from either commit: see bench/RESULTS.md, "Feeding the GPU".
import sharp from 'sharp';
import { DEFAULT_IMAGE_LIMITS, preprocessInto } from '../shared/image/preprocess.ts';
import type { InputSpec } from '../shared/model/manifest.ts';

const SPEC: InputSpec = {
  name: 'input',
  layout: 'NCHW',
  width: 224,
  height: 224,
  colorOrder: 'RGB',
  resize: { policy: 'shorter-side-then-center-crop', cropFraction: 0.875, kernel: 'linear' },
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  color: 'stored',
  background: [0, 0, 0],
};
const W = 4000;
const H = 3000;
const runs = Number(process.argv[2] ?? 8);

const pixels = Buffer.alloc(W * H * 3);
for (let y = 0; y < H; y++) {
  for (let x = 0; x < W; x++) {
    const i = (y * W + x) * 3;
    pixels[i] = (x * 7 + y * 3) & 255;
    pixels[i + 1] = ((x ^ y) * 5) & 255;
    pixels[i + 2] = Math.round(127.5 + 127.5 * Math.sin(x / 9) * Math.cos(y / 13));
  }
}
const raw = { raw: { width: W, height: H, channels: 3 as const } };
const upright = await sharp(pixels, raw).jpeg({ quality: 90 }).toBuffer();
const rotated = await sharp(pixels, raw).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toBuffer();
const out = new Float32Array(3 * SPEC.width * SPEC.height);
for (const [name, bytes] of [
  ['upright', upright],
  ['EXIF orientation 6', rotated],
] as const) {
  await preprocessInto(bytes, SPEC, DEFAULT_IMAGE_LIMITS, out, 0);
  const cpuMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const before = process.cpuUsage();
    await preprocessInto(bytes, SPEC, DEFAULT_IMAGE_LIMITS, out, 0);
    const used = process.cpuUsage(before);
    cpuMs.push((used.user + used.system) / 1000);
  }
  const median = [...cpuMs].sort((a, b) => a - b)[Math.floor(runs / 2)] ?? 0;
  console.log(
    `12 MP JPEG (${(bytes.length / 1e6).toFixed(2)} MB), ${name}: ${median.toFixed(1)} CPU-ms per image ` +
      `(median of ${runs}), ${(1000 / median).toFixed(1)} images per CPU-second`,
  );
}
