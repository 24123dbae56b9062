import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { DEFAULT_IMAGE_LIMITS, preprocessInto } from '../../shared/image/preprocess.ts';
import { type InputSpec, inputSpecSchema } from '../../shared/model/manifest.ts';
import { spec } from '../helpers/images.ts';

// Colour as the model was trained: torchvision and timm train on PIL's
// Image.open(...).convert('RGB'), which never applies an embedded ICC profile. These
// fixtures are made here (sharp), the reference is Debian's python3-pil where present.
const W = 64;
const H = 48;
const RAW = { raw: { width: W, height: H, channels: 3 as const } };

/** Saturated ramps in every channel: where a wide-gamut profile moves values the most. */
function ramps(): Buffer {
  const px = Buffer.alloc(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = (y * W + x) * 3;
      px[i] = (x * 4) & 255;
      px[i + 1] = (y * 5) & 255;
      px[i + 2] = ((x + y) * 3) & 255;
    }
  }
  return px;
}

const FIXTURES = {
  // A Display P3 profile embedded with the stored values (withIccProfile converts then embeds).
  'wide-gamut JPEG (Display P3 profile)': () =>
    sharp(ramps(), RAW).withIccProfile('p3').jpeg({ quality: 95 }).toBuffer(),
  'CMYK JPEG (Adobe, no profile)': () =>
    sharp(ramps(), RAW).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer(),
  '16-bit RGB PNG': () => {
    const u16 = new Uint16Array(W * H * 3);
    for (let i = 0; i < u16.length; i++) u16[i] = (i * 2749) & 0xffff;
    return sharp(u16, RAW).toColourspace('rgb16').png().toBuffer();
  },
  'greyscale JPEG': () => sharp(ramps(), RAW).toColourspace('b-w').jpeg({ quality: 95 }).toBuffer(),
  'palette PNG': () => sharp(ramps(), RAW).png({ palette: true, colours: 16 }).toBuffer(),
} as const;
type FixtureName = keyof typeof FIXTURES;

/** The decoded image itself: a spec whose resize is the identity and whose tensor is pixel / 255. */
function identity(color: InputSpec['color']): InputSpec {
  return spec({ width: W, height: H, layout: 'NHWC', color });
}

async function decodedRgb(bytes: Uint8Array, color: InputSpec['color']): Promise<Uint8Array> {
  const out = new Float32Array(W * H * 3);
  await preprocessInto(bytes, identity(color), DEFAULT_IMAGE_LIMITS, out, 0);
  return Uint8Array.from(out, (v) => Math.round(v * 255));
}

function maxDifference(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length, 'pixel count');
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
  return worst;
}

const PIL_SCRIPT = `
import base64, json, sys
from PIL import Image
out = {}
for path in sys.argv[1:]:
    im = Image.open(path)
    rgb = im.convert("RGB")
    out[path] = {"mode": im.mode, "size": list(rgb.size), "rgb": base64.b64encode(rgb.tobytes()).decode()}
print(json.dumps(out))
`;

async function pilPresent(): Promise<string | undefined> {
  try {
    await promisify(execFile)('/usr/bin/python3', ['-c', 'import PIL']);
    return undefined;
  } catch {
    return 'no PIL under /usr/bin/python3 (apt-get install -y python3-pil; python3-torchvision brings it)';
  }
}

describe('preprocessing colour: as PIL convert("RGB") gives it (manifest color "stored")', () => {
  let dir: string;
  const files = new Map<FixtureName, { path: string; bytes: Buffer }>();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-colour-'));
    for (const [name, make] of Object.entries(FIXTURES) as Array<[FixtureName, () => Promise<Buffer>]>) {
      const bytes = await make();
      const path = join(dir, `${files.size}.img`);
      await writeFile(path, bytes);
      files.set(name, { path, bytes });
    }
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a manifest without color means "stored"', () => {
    const { color: _, ...rest } = spec();
    assert.equal(inputSpecSchema.parse(rest).color, 'stored');
    assert.throws(() => inputSpecSchema.parse({ ...rest, color: 'p3' }));
  });

  it('decodes each fixture within 2 levels of PIL, before resizing', async (t) => {
    const missing = await pilPresent();
    if (missing) {
      t.skip(missing);
      return;
    }
    const paths = [...files.values()].map((f) => f.path);
    const { stdout } = await promisify(execFile)('/usr/bin/python3', ['-c', PIL_SCRIPT, ...paths], {
      maxBuffer: 64 * 1024 * 1024,
    });
    const reference = JSON.parse(stdout) as Record<string, { mode: string; size: number[]; rgb: string }>;
    for (const [name, { path, bytes }] of files) {
      const pil = reference[path];
      assert.ok(pil, name);
      assert.deepEqual(pil.size, [W, H], name);
      const worst = maxDifference(await decodedRgb(bytes, 'stored'), Buffer.from(pil.rgb, 'base64'));
      assert.ok(worst <= 2, `${name} (PIL mode ${pil.mode}): up to ${worst} levels from PIL`);
    }
    // The fixtures exercise what they claim to: PIL itself sees these modes.
    const modes = Object.fromEntries([...files].map(([name, f]) => [name, reference[f.path]?.mode]));
    assert.equal(modes['CMYK JPEG (Adobe, no profile)'], 'CMYK');
    assert.equal(modes['palette PNG'], 'P');
    assert.equal(modes['greyscale JPEG'], 'L');
  });

  it('"stored" leaves a wide-gamut profile unapplied; "srgb" converts through it', async () => {
    const { bytes } = files.get('wide-gamut JPEG (Display P3 profile)') as { bytes: Buffer };
    const stored = await decodedRgb(bytes, 'stored');
    const managed = await decodedRgb(bytes, 'srgb');
    // P3's saturated colours lie outside sRGB: lcms moves them far more than rounding would.
    assert.ok(maxDifference(stored, managed) > 10, 'the profile changes the pixels when applied');
  });

  it('"stored" CMYK uses PIL\'s formula, r = (255 - k) - c (255 - k) / 255, not a CMYK profile', async () => {
    const { bytes } = files.get('CMYK JPEG (Adobe, no profile)') as { bytes: Buffer };
    const cmyk = await sharp(bytes, { ignoreIcc: true })
      .pipelineColourspace('cmyk')
      .toColourspace('cmyk')
      .raw()
      .toBuffer();
    const expected = new Uint8Array(W * H * 3);
    for (let p = 0; p < W * H; p++) {
      const nk = 255 - (cmyk[p * 4 + 3] as number);
      for (let c = 0; c < 3; c++)
        expected[p * 3 + c] = Math.round(nk - ((cmyk[p * 4 + c] as number) * nk) / 255);
    }
    assert.ok(maxDifference(await decodedRgb(bytes, 'stored'), expected) <= 1);
    // lcms with a generic CMYK profile is a different colour altogether.
    assert.ok(maxDifference(await decodedRgb(bytes, 'srgb'), expected) > 10);
  });
});
