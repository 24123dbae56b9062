/** Formats the pipeline decodes. SVG is never among them: it can reference external resources. */
export const IMAGE_FORMATS = ['jpeg', 'png', 'webp', 'tiff', 'gif', 'avif'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, end));
}

/**
 * Names the format from the first bytes, before any decoder sees them. Returns the
 * format name for accepted formats, a descriptive name for known refused ones (svg,
 * heic, bmp, pdf) and 'unknown' otherwise.
 */
export function sniffFormat(bytes: Uint8Array): ImageFormat | 'svg' | 'heic' | 'bmp' | 'pdf' | 'unknown' {
  const b = bytes;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && ascii(b, 1, 4) === 'PNG' && b[0] === 0x89 && b[4] === 0x0d && b[5] === 0x0a)
    return 'png';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'webp';
  if (b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49) || (b[0] === 0x4d && b[1] === 0x4d))) {
    const magic = b[0] === 0x49 ? (b[2] ?? 0) | ((b[3] ?? 0) << 8) : ((b[2] ?? 0) << 8) | (b[3] ?? 0);
    if (magic === 42 || magic === 43) return 'tiff';
  }
  if (b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a')) return 'gif';
  if (b.length >= 12 && ascii(b, 4, 8) === 'ftyp') {
    const brand = ascii(b, 8, 12);
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (['heic', 'heix', 'hevc', 'hevx', 'mif1', 'msf1'].includes(brand)) return 'heic';
  }
  if (b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) return 'bmp';
  if (b.length >= 5 && ascii(b, 0, 5) === '%PDF-') return 'pdf';
  const head = new TextDecoder('utf-8', { fatal: false })
    .decode(b.subarray(0, 1024))
    .replace(/^\uFEFF/, '')
    .trimStart()
    .toLowerCase();
  if (
    head.startsWith('<svg') ||
    ((head.startsWith('<?xml') || head.startsWith('<!--')) && head.includes('<svg'))
  ) {
    return 'svg';
  }
  return 'unknown';
}
