import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';

/** Debian's dataset-fashion-mnist (apt-get install -y dataset-fashion-mnist). */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export interface IdxImages {
  readonly count: number;
  readonly rows: number;
  readonly cols: number;
  readonly pixels: Uint8Array;
}

export function hasFashionMnist(dir = FASHION_MNIST_DIR): boolean {
  return ['train-images-idx3-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'].every((f) =>
    existsSync(join(dir, f)),
  );
}

/** An IDX file (gzip): a big-endian header of dimension sizes, then uint8 values. */
async function readIdx(path: string): Promise<{ dims: number[]; values: Uint8Array }> {
  const data = gunzipSync(await readFile(path));
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const ndims = view.getUint32(0) & 0xff;
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i));
  return { dims, values: data.subarray(4 + 4 * ndims) };
}

export async function readImages(split: 'train' | 't10k', dir = FASHION_MNIST_DIR): Promise<IdxImages> {
  const { dims, values } = await readIdx(join(dir, `${split}-images-idx3-ubyte.gz`));
  const [count, rows, cols] = dims as [number, number, number];
  return { count, rows, cols, pixels: values };
}

export async function readLabels(split: 'train' | 't10k', dir = FASHION_MNIST_DIR): Promise<Uint8Array> {
  return (await readIdx(join(dir, `${split}-labels-idx1-ubyte.gz`))).values;
}

/** Image `i` as an 8-bit grey PNG, the form the bundled samples take. */
export function png(images: IdxImages, i: number): Promise<Buffer> {
  const size = images.rows * images.cols;
  return sharp(images.pixels.subarray(i * size, (i + 1) * size), {
    raw: { width: images.cols, height: images.rows, channels: 1 },
  })
    .png()
    .toBuffer();
}

/** Writes the first `count` images as PNG files (kept between runs) and returns their paths. */
export async function writePngs(images: IdxImages, dir: string, count: number): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < Math.min(count, images.count); i++) {
    const path = join(dir, `${String(i).padStart(5, '0')}.png`);
    if (!existsSync(path)) await writeFile(path, await png(images, i));
    paths.push(path);
  }
  return paths;
}
