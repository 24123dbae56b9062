// preprocessInto as it was before decision 0031 (every embedded profile converted to sRGB by
// lcms), kept for the decode section's one comparison: CPU per image, then and now, same run.
import sharp from 'sharp';
import {
  ImageDecodeError,
  ImageEmptyError,
  ImageError,
  ImageTooLargeError,
  TooManyPixelsError,
  UnsupportedFormatError,
} from '../../shared/errors.ts';
import { type ImageFormat, sniffFormat } from '../../shared/image/formats.ts';
import { type ImageLimits, type PreparedImage, writeTensor } from '../../shared/image/preprocess.ts';
import type { InputSpec } from '../../shared/model/manifest.ts';

/**
 * Decodes one encoded image and writes the model's input tensor for it into `out`
 * (at `offset`), exactly as the manifest describes: EXIF orientation applied, any
 * colour space and bit depth converted to 8-bit sRGB, alpha composited onto the
 * background, shorter side resized to resizeSize (or size / cropFraction), centre crop, then
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

  const shorter =
    spec.resize.resizeSize ?? Math.round(Math.min(spec.width, spec.height) / spec.resize.cropFraction);
  const ratio = shorter / Math.min(width, height);
  const band = centreBand(width, height, ratio, spec);
  const resizedWidth = Math.max(spec.width, Math.round(band.width * ratio));
  const resizedHeight = Math.max(spec.height, Math.round(band.height * ratio));
  const crop = {
    left: Math.floor((resizedWidth - spec.width) / 2),
    top: Math.floor((resizedHeight - spec.height) / 2),
  };
  const cropInJs = resizedWidth * resizedHeight <= MAX_RESIZED_AREA_FACTOR * spec.width * spec.height;
  let pixels: Buffer;
  try {
    let image = sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'error', pages: 1 }).autoOrient();
    // Called before resize(), extract() crops the (oriented) source rather than the resized image.
    if (band.width !== width || band.height !== height) image = image.extract(band);
    image = image
      .flatten({ background: { r: spec.background[0], g: spec.background[1], b: spec.background[2] } })
      .toColourspace('srgb')
      .resize({ width: resizedWidth, height: resizedHeight, fit: 'fill', kernel: spec.resize.kernel });
    // The centre crop is taken in writeTensor rather than with a second extract(): with
    // autoOrient, any extract() makes sharp rotate the full-size image before resizing,
    // which turns off JPEG shrink-on-load for every EXIF-rotated photo (decision 0016).
    // A panorama's resized image is many times the crop: libvips then crops it instead.
    if (!cropInJs) image = image.extract({ ...crop, width: spec.width, height: spec.height });
    pixels = await image.raw({ depth: 'uchar' }).toBuffer();
  } catch (error) {
    throw new ImageDecodeError(firstLine(error), error);
  }
  const expected = cropInJs ? resizedWidth * resizedHeight * 3 : spec.width * spec.height * 3;
  if (pixels.length !== expected) {
    throw new ImageDecodeError(`decoded ${pixels.length} bytes, expected ${expected} (3 channels)`);
  }
  writeTensor(pixels, spec, out, offset, cropInJs ? { width: resizedWidth, ...crop } : undefined);
  return { format, width, height };
}

/**
 * Beyond this many pixels on its longer side, a resized image is never built whole:
 * libvips refuses output sides past its coordinate limit (a 1x3,000,000 PNG resized
 * to 28 px wide would be 84,000,000 px tall), and the centre crop needs only a sliver.
 * Every image up to an aspect ratio of 256:1 (for a 256 px shorter side) stays under it.
 */
const MAX_RESIZED_SIDE = 65_536;

/**
 * Up to this many times the model's input area, the resized image comes out whole and the
 * centre crop is cut in JavaScript (every usual aspect ratio: 16:9 at 0.875 is 2.4x).
 */
const MAX_RESIZED_AREA_FACTOR = 4;

/**
 * The part of the source the centre crop can see. Normally the whole image; when the
 * resized longer side would pass MAX_RESIZED_SIDE, only the centred band along the
 * longer side that covers the crop, with a margin for the resampling kernel, so the
 * crop still shows the image's own centre at the same scale.
 */
function centreBand(
  width: number,
  height: number,
  ratio: number,
  spec: InputSpec,
): { left: number; top: number; width: number; height: number } {
  const whole = { left: 0, top: 0, width, height };
  if (Math.max(width, height) * ratio <= MAX_RESIZED_SIDE) return whole;
  // Kernels read at most a few pixels either side: source pixels when enlarging,
  // output pixels (1 / ratio source pixels each) when shrinking.
  const margin = Math.ceil(4 * Math.max(1, 1 / ratio));
  if (width > height) {
    const length = Math.min(width, Math.ceil(spec.width / ratio) + 2 * margin);
    return { ...whole, left: Math.floor((width - length) / 2), width: length };
  }
  const length = Math.min(height, Math.ceil(spec.height / ratio) + 2 * margin);
  return { ...whole, top: Math.floor((height - length) / 2), height: length };
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}
