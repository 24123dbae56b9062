import sharp from 'sharp';
import {
  ImageDecodeError,
  ImageEmptyError,
  ImageError,
  ImageTooLargeError,
  TooManyPixelsError,
  UnsupportedFormatError,
} from '../errors.ts';
import type { InputSpec } from '../model/manifest.ts';
import { IMAGE_LIMITS } from '../settings.ts';
import { IMAGE_FORMATS, type ImageFormat, sniffFormat } from './formats.ts';

export interface ImageLimits {
  /** Largest encoded image accepted, in bytes. */
  readonly maxBytes: number;
  /** Largest decoded image accepted (width x height), checked from the header before decoding. */
  readonly maxPixels: number;
  readonly formats: readonly ImageFormat[];
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = { ...IMAGE_LIMITS, formats: IMAGE_FORMATS };

// Labeling is a stream of distinct images: libvips' operation cache only holds memory.
sharp.cache(false);

export interface PreparedImage {
  readonly format: ImageFormat;
  /** Size after EXIF orientation, before resizing. */
  readonly width: number;
  readonly height: number;
}

/**
 * Decodes one encoded image and writes the model's input tensor for it into `out`
 * (at `offset`), exactly as the manifest describes: EXIF orientation applied, any
 * colour space and bit depth converted to 8-bit sRGB, alpha composited onto the
 * background, shorter side resized to size / cropFraction, centre crop, then
 * (pixel * scale - mean) / std in the manifest's layout and colour order.
 *
 * Throws only ImageError subclasses; each has a stable code.
 */
export async function preprocessInto(
  bytes: Uint8Array,
  spec: InputSpec,
  limits: ImageLimits,
  out: Float32Array,
  offset: number,
): Promise<PreparedImage> {
  if (bytes.length === 0) throw new ImageEmptyError();
  if (bytes.length > limits.maxBytes) throw new ImageTooLargeError(bytes.length, limits.maxBytes);
  const sniffed = sniffFormat(bytes);
  if (!(limits.formats as readonly string[]).includes(sniffed)) {
    throw new UnsupportedFormatError(sniffed, limits.formats);
  }
  const format = sniffed as ImageFormat;

  let width: number;
  let height: number;
  try {
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    if (format === 'avif' && meta.compression && meta.compression !== 'av1') {
      throw new UnsupportedFormatError(`heif/${meta.compression}`, limits.formats);
    }
    width = meta.autoOrient?.width ?? meta.width ?? 0;
    height = meta.autoOrient?.height ?? meta.height ?? 0;
  } catch (error) {
    if (error instanceof ImageError) throw error;
    throw new ImageDecodeError(firstLine(error), error);
  }
  if (width <= 0 || height <= 0) throw new ImageDecodeError('the header has no dimensions');
  if (width * height > limits.maxPixels) throw new TooManyPixelsError(width, height, limits.maxPixels);

  const shorter = Math.round(Math.min(spec.width, spec.height) / spec.resize.cropFraction);
  const ratio = shorter / Math.min(width, height);
  const resizedWidth = Math.max(spec.width, Math.round(width * ratio));
  const resizedHeight = Math.max(spec.height, Math.round(height * ratio));
  let pixels: Buffer;
  try {
    pixels = await sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'error', pages: 1 })
      .autoOrient()
      .flatten({ background: { r: spec.background[0], g: spec.background[1], b: spec.background[2] } })
      .toColourspace('srgb')
      .resize({ width: resizedWidth, height: resizedHeight, fit: 'fill', kernel: spec.resize.kernel })
      .extract({
        left: Math.floor((resizedWidth - spec.width) / 2),
        top: Math.floor((resizedHeight - spec.height) / 2),
        width: spec.width,
        height: spec.height,
      })
      .raw({ depth: 'uchar' })
      .toBuffer();
  } catch (error) {
    throw new ImageDecodeError(firstLine(error), error);
  }
  const expected = spec.width * spec.height * 3;
  if (pixels.length !== expected) {
    throw new ImageDecodeError(`decoded ${pixels.length} bytes, expected ${expected} (3 channels)`);
  }
  writeTensor(pixels, spec, out, offset);
  return { format, width, height };
}

/** uint8 HWC RGB → float32 in the manifest's layout, colour order and normalisation. */
export function writeTensor(rgb: Uint8Array, spec: InputSpec, out: Float32Array, offset: number): void {
  const plane = spec.width * spec.height;
  const order = spec.colorOrder === 'RGB' ? [0, 1, 2] : [2, 1, 0];
  for (let c = 0; c < 3; c++) {
    const source = order[c] as number;
    // mean and std are listed per tensor channel, in the manifest's colour order.
    const a = spec.scale / spec.std[c as 0 | 1 | 2];
    const b = -spec.mean[c as 0 | 1 | 2] / spec.std[c as 0 | 1 | 2];
    if (spec.layout === 'NCHW') {
      const base = offset + c * plane;
      for (let p = 0; p < plane; p++) out[base + p] = (rgb[p * 3 + source] as number) * a + b;
    } else {
      for (let p = 0; p < plane; p++) out[offset + p * 3 + c] = (rgb[p * 3 + source] as number) * a + b;
    }
  }
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}
