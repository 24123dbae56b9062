import sharp, { type Sharp } from 'sharp';
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
import { readJpegHeader } from './jpeg-header.ts';

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
 * colour space and bit depth converted to 8-bit RGB the way the manifest's `color` says
 * (for 'stored', as PIL's convert('RGB') does, the embedded ICC profile not applied), alpha
 * composited onto the background, shorter side resized to resizeSize (or size /
 * cropFraction), centre crop, then (pixel * scale - mean) / std in the manifest's layout
 * and colour order.
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
  let cmyk: boolean;
  const jpeg = format === 'jpeg' ? readJpegHeader(bytes) : undefined;
  if (jpeg) {
    const turned = jpeg.orientation >= 5;
    width = turned ? jpeg.height : jpeg.width;
    height = turned ? jpeg.width : jpeg.height;
    cmyk = jpeg.components === 4;
  } else {
    try {
      const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
      if (format === 'avif' && meta.compression && meta.compression !== 'av1') {
        throw new UnsupportedFormatError(`heif/${meta.compression}`, limits.formats);
      }
      width = meta.autoOrient?.width ?? meta.width ?? 0;
      height = meta.autoOrient?.height ?? meta.height ?? 0;
      cmyk = meta.space === 'cmyk';
    } catch (error) {
      if (error instanceof ImageError) throw error;
      throw new ImageDecodeError(firstLine(error), error);
    }
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
  const stored = spec.color === 'stored';
  let pixels: Buffer;
  try {
    const options = { limitInputPixels: limits.maxPixels, failOn: 'error', pages: 1 } as const;
    // 'stored' skips lcms (ignoreIcc): the largest single cost of a photo with a profile,
    // and not what the model was trained on. CMYK has no stored RGB: PIL's formula, in JS.
    let image =
      stored && cmyk
        ? await storedCmykAsRgb(bytes, options)
        : sharp(bytes, { ...options, ignoreIcc: stored }).autoOrient();
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
 * A CMYK image (JPEG or TIFF), oriented, as 8-bit RGB the way PIL's convert('RGB') makes it:
 * per pixel r = (255 - k) - c * (255 - k) / 255 with PIL's rounding, no profile. Adobe's
 * inverted CMYK JPEGs are un-inverted by libvips as by PIL. Returns a pipeline over the raw RGB.
 */
async function storedCmykAsRgb(
  bytes: Uint8Array,
  options: { limitInputPixels: number; failOn: 'error'; pages: number },
): Promise<Sharp> {
  const { data, info } = await sharp(bytes, { ...options, ignoreIcc: true })
    .autoOrient()
    .pipelineColourspace('cmyk')
    .toColourspace('cmyk')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  const inBands: number = info.channels;
  if (inBands !== 4 && inBands !== 5) {
    throw new ImageDecodeError(`a CMYK image decoded to ${inBands} channels, expected 4 or 5`);
  }
  const outBands = inBands - 1;
  const pixelCount = info.width * info.height;
  const rgb = Buffer.allocUnsafe(pixelCount * outBands);
  for (let i = 0, o = 0; i < data.length; i += inBands, o += outBands) {
    const nk = 255 - (data[i + 3] as number);
    for (let c = 0; c < 3; c++) {
      // PIL's MULDIV255: (t + (t >> 8)) >> 8 with t = a * b + 128.
      const t = (data[i + c] as number) * nk + 128;
      rgb[o + c] = nk - ((t + (t >> 8)) >> 8);
    }
    if (outBands === 4) rgb[o + 3] = data[i + 4] as number;
  }
  return sharp(rgb, { raw: { width: info.width, height: info.height, channels: outBands as 3 | 4 } });
}

/**
 * Beyond this many pixels on its longer side, a resized image is never built whole:
 * libvips refuses output sides past its coordinate limit (a 1x3,000,000 PNG resized
 * to 28 px wide would be 84,000,000 px tall), and the centre crop needs only a sliver.
 * Every image up to an aspect ratio of 256:1 (for a 256 px shorter side) stays under it.
 */
export const MAX_RESIZED_SIDE = 65_536;

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

/** Where the model's input lies in a larger uint8 HWC image: its row length and the crop's corner. */
export interface CropWindow {
  readonly width: number;
  readonly left: number;
  readonly top: number;
}

/**
 * uint8 HWC RGB → float32 in the manifest's layout, colour order and normalisation. `rgb`
 * is the model's input size, or a larger image of which `crop` names the input's window.
 */
export function writeTensor(
  rgb: Uint8Array,
  spec: InputSpec,
  out: Float32Array,
  offset: number,
  crop: CropWindow = { width: spec.width, left: 0, top: 0 },
): void {
  const plane = spec.width * spec.height;
  const [s0, s1, s2] = spec.colorOrder === 'RGB' ? [0, 1, 2] : [2, 1, 0];
  // mean and std are listed per tensor channel, in the manifest's colour order.
  const a0 = spec.scale / spec.std[0];
  const a1 = spec.scale / spec.std[1];
  const a2 = spec.scale / spec.std[2];
  const b0 = -spec.mean[0] / spec.std[0];
  const b1 = -spec.mean[1] / spec.std[1];
  const b2 = -spec.mean[2] / spec.std[2];
  // One pass over each source row, all three channels at once: reading the row three times
  // (once per plane) cost 1.6x as much, a few per cent of a photo's preprocessing.
  for (let y = 0; y < spec.height; y++) {
    let p = ((crop.top + y) * crop.width + crop.left) * 3;
    if (spec.layout === 'NCHW') {
      const o = offset + y * spec.width;
      for (let x = 0; x < spec.width; x++, p += 3) {
        out[o + x] = (rgb[p + s0] as number) * a0 + b0;
        out[o + plane + x] = (rgb[p + s1] as number) * a1 + b1;
        out[o + 2 * plane + x] = (rgb[p + s2] as number) * a2 + b2;
      }
    } else {
      let o = offset + y * spec.width * 3;
      for (let x = 0; x < spec.width; x++, p += 3, o += 3) {
        out[o] = (rgb[p + s0] as number) * a0 + b0;
        out[o + 1] = (rgb[p + s1] as number) * a1 + b1;
        out[o + 2] = (rgb[p + s2] as number) * a2 + b2;
      }
    }
  }
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}
