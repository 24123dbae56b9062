/** What preprocessing needs from a JPEG before decoding it. */
export interface JpegHeader {
  readonly width: number;
  readonly height: number;
  /** 1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK. */
  readonly components: number;
  /** EXIF orientation 1..8 (1 when absent or out of range). */
  readonly orientation: number;
}

/**
 * Reads a JPEG's frame header and EXIF orientation from its markers, in JavaScript: a second
 * libvips load just for the header (sharp's metadata(), which also parses every EXIF, ICC and
 * XMP block) costs as much as a few per cent of the decode. Returns undefined for anything it
 * does not read plainly (a truncated or odd stream, a DNL-sized frame), and the caller then asks
 * libvips: this is a shortcut, never the judge of a file.
 */
export function readJpegHeader(bytes: Uint8Array): JpegHeader | undefined {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  let orientation = 1;
  let exifSeen = false;
  let i = 2;
  while (i + 4 <= bytes.length) {
    if (bytes[i] !== 0xff) return undefined;
    const marker = bytes[i + 1] as number;
    // Fill bytes before a marker.
    if (marker === 0xff) {
      i++;
      continue;
    }
    // Standalone markers carry no length.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) return undefined; // end of image or scan before a frame
    const length = ((bytes[i + 2] as number) << 8) | (bytes[i + 3] as number);
    if (length < 2 || i + 2 + length > bytes.length) return undefined;
    const start = i + 4;
    const end = i + 2 + length;
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) {
      if (end - start < 6) return undefined;
      const height = ((bytes[start + 1] as number) << 8) | (bytes[start + 2] as number);
      const width = ((bytes[start + 3] as number) << 8) | (bytes[start + 4] as number);
      const components = bytes[start + 5] as number;
      if (width === 0 || height === 0 || ![1, 3, 4].includes(components)) return undefined;
      return { width, height, components, orientation };
    }
    // libvips reads the first APP1 Exif block only, as this does.
    if (marker === 0xe1 && !exifSeen && end - start >= 6 && isExifHeader(bytes, start)) {
      exifSeen = true;
      const read = exifOrientation(bytes, start + 6, end);
      if (read === undefined) return undefined;
      orientation = read;
    }
    i = end;
  }
  return undefined;
}

function isExifHeader(b: Uint8Array, at: number): boolean {
  return b[at] === 0x45 && b[at + 1] === 0x78 && b[at + 2] === 0x69 && b[at + 3] === 0x66 && b[at + 4] === 0;
}

/** IFD0's Orientation (0x0112) in a TIFF block [start, end); 1 without one, undefined when unreadable. */
function exifOrientation(b: Uint8Array, start: number, end: number): number | undefined {
  if (end - start < 8) return undefined;
  const little = b[start] === 0x49 && b[start + 1] === 0x49;
  if (!little && !(b[start] === 0x4d && b[start + 1] === 0x4d)) return undefined;
  const u16 = (at: number) =>
    little
      ? (b[at] as number) | ((b[at + 1] as number) << 8)
      : ((b[at] as number) << 8) | (b[at + 1] as number);
  const u32 = (at: number) => (little ? u16(at) + u16(at + 2) * 65536 : u16(at) * 65536 + u16(at + 2));
  if (u16(start + 2) !== 42) return undefined;
  const ifd = start + u32(start + 4);
  if (ifd + 2 > end) return undefined;
  const entries = u16(ifd);
  if (ifd + 2 + entries * 12 > end) return undefined;
  for (let e = 0; e < entries; e++) {
    const at = ifd + 2 + e * 12;
    if (u16(at) !== 0x0112) continue;
    // SHORT, count 1: the value sits in the first two bytes of the value field.
    if (u16(at + 2) !== 3) return undefined;
    const value = u16(at + 8);
    return value >= 1 && value <= 8 ? value : 1;
  }
  return 1;
}
