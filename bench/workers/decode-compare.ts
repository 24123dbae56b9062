// preprocessInto against the previous code and against its own parts, over one image set,
// one image at a time and one libvips thread: the decode section pins it to one core next
// to PIL's decode of the same files (bench/peers/pil_decode.py).
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { readJpegHeader } from '../../shared/image/jpeg-header.ts';
import { DEFAULT_IMAGE_LIMITS, preprocessInto, writeTensor } from '../../shared/image/preprocess.ts';
import { loadModelBundle } from '../../shared/model/manifest.ts';
import { workerMain } from '../lib/child.ts';
import { preprocessInto as previousPreprocessInto } from '../lib/preprocess-before.ts';
import { percentile } from '../lib/stats.ts';

export interface DecodeCompareArgs {
  readonly modelDir: string;
  readonly files: readonly string[];
  readonly seconds: number;
  readonly minPasses: number;
  /** The paths to time, taking turns in this process. */
  readonly paths: readonly DecodePath[];
}

export interface DecodeCompareResult {
  /** CPU-ms per image of each path, the median pass, every path taking turns pass by pass over the files. */
  readonly cpuMsPerImage: Readonly<Partial<Record<DecodePath, number>>>;
  readonly passes: number;
  readonly megapixels: number;
}

/**
 * preprocess: preprocessInto now. previous: preprocessInto before decision 0031 (lcms on every
 * profile). The rest take it apart: the header as preprocessInto reads it (JavaScript for
 * JPEG) and as libvips does (sharp's metadata(), what it used before), full decode to raw with
 * and without the embedded profile, decode + shrink-on-load + resize without the tensor,
 * and the JavaScript tensor fill alone.
 */
export type DecodePath =
  | 'preprocess'
  | 'previous'
  | 'header'
  | 'headerLibvips'
  | 'fullDecode'
  | 'fullDecodeWithProfile'
  | 'decodeResize'
  | 'tensorFill';

await workerMain<DecodeCompareArgs, DecodeCompareResult>(async (args) => {
  sharp.concurrency(1);
  const { manifest } = await loadModelBundle(args.modelDir);
  const spec = manifest.input;
  const inputs = await Promise.all(args.files.map((f) => readFile(f)));
  const out = new Float32Array(3 * spec.width * spec.height);
  const sizes = await Promise.all(inputs.map((b) => sharp(b).metadata()));
  const shorter = spec.resize.resizeSize ?? Math.round(spec.width / spec.resize.cropFraction);
  const resized = sizes.map((m) => {
    const w = m.autoOrient?.width ?? m.width ?? 1;
    const h = m.autoOrient?.height ?? m.height ?? 1;
    const ratio = shorter / Math.min(w, h);
    return {
      width: Math.max(spec.width, Math.round(w * ratio)),
      height: Math.max(spec.height, Math.round(h * ratio)),
    };
  });
  const big = resized.reduce((a, r) => Math.max(a, r.width * r.height), 0);
  const rgb = new Uint8Array(big * 3);
  const paths: Record<DecodePath, (bytes: Buffer, i: number) => Promise<unknown> | unknown> = {
    preprocess: (b) => preprocessInto(b, spec, DEFAULT_IMAGE_LIMITS, out, 0),
    previous: (b) => previousPreprocessInto(b, spec, DEFAULT_IMAGE_LIMITS, out, 0),
    header: (b) => readJpegHeader(b) ?? sharp(b, { limitInputPixels: false }).metadata(),
    headerLibvips: (b) => sharp(b, { limitInputPixels: false }).metadata(),
    fullDecode: (b) => sharp(b, { ignoreIcc: true }).autoOrient().raw().toBuffer(),
    fullDecodeWithProfile: (b) => sharp(b).autoOrient().toColourspace('srgb').raw().toBuffer(),
    decodeResize: (b, i) =>
      sharp(b, { ignoreIcc: true })
        .autoOrient()
        .resize({
          ...(resized[i] as { width: number; height: number }),
          fit: 'fill',
          kernel: spec.resize.kernel,
        })
        .raw()
        .toBuffer(),
    tensorFill: (_b, i) => {
      const r = resized[i] as { width: number; height: number };
      const crop = {
        width: r.width,
        left: Math.floor((r.width - spec.width) / 2),
        top: Math.floor((r.height - spec.height) / 2),
      };
      writeTensor(rgb, spec, out, 0, crop);
    },
  };
  const names = args.paths;
  // Per pass and path, CPU-ms per image; the median pass is reported: a pass another process
  // disturbed (the machine is shared) moves the mean, not the median.
  const perPass = Object.fromEntries(names.map((k) => [k, [] as number[]])) as Record<string, number[]>;
  for (const name of names) for (let i = 0; i < inputs.length; i++) await paths[name](inputs[i] as Buffer, i);
  let passes = 0;
  const deadline = performance.now() + args.seconds * 1000;
  while (performance.now() < deadline || passes < args.minPasses) {
    for (const name of names) {
      const cpu = process.cpuUsage();
      for (let i = 0; i < inputs.length; i++) await paths[name](inputs[i] as Buffer, i);
      const used = process.cpuUsage(cpu);
      perPass[name]?.push((used.user + used.system) / 1000 / inputs.length);
    }
    passes++;
  }
  const cpuMsPerImage = Object.fromEntries(names.map((k) => [k, percentile(perPass[k] ?? [], 50)]));
  const megapixels =
    sizes.reduce((a, m) => a + (m.width ?? 0) * (m.height ?? 0), 0) / Math.max(1, sizes.length) / 1e6;
  return { cpuMsPerImage, passes, megapixels };
});
