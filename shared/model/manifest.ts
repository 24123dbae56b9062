import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { CODE } from '../error-codes.ts';
import { ModelError } from '../errors.ts';
import { resolveModelDir } from './model-store.ts';

const rgb = z.tuple([z.number(), z.number(), z.number()]);

/** Everything preprocessing needs to reproduce the model's training transform. */
export const inputSpecSchema = z.object({
  name: z.string().min(1),
  layout: z.enum(['NCHW', 'NHWC']),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  colorOrder: z.enum(['RGB', 'BGR']),
  resize: z.object({
    /**
     * Resize the shorter side to resizeSize (or, without it, size / cropFraction), then cut
     * the centre: torchvision's Resize(resize_size) + CenterCrop(crop_size).
     */
    policy: z.literal('shorter-side-then-center-crop'),
    cropFraction: z.number().gt(0).lte(1),
    /** The shorter side before the crop, in pixels, as torchvision's transform names it (B3: 320 for a 300 crop). */
    resizeSize: z.number().int().positive().optional(),
    kernel: z.enum(['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3']).default('linear'),
  }),
  /** Pixel (0..255) times scale, then (x - mean) / std per channel. */
  scale: z.number().positive(),
  mean: rgb,
  std: rgb.refine((s) => s.every((v) => v > 0), 'std must be positive'),
  /**
   * The colour the model was trained on. 'stored' (the default): the file's pixel values as
   * stored, an embedded ICC profile not applied, CMYK by the naive formula: what PIL's
   * Image.open(...).convert('RGB') gives, so every torchvision and timm training pipeline.
   * 'srgb': the embedded (or, for CMYK, a generic) profile converted to sRGB by lcms, for
   * models trained on colour-managed decodes.
   */
  color: z.enum(['stored', 'srgb']).default('stored'),
  /** Transparent pixels are composited onto this colour (0..255). */
  background: rgb.default([0, 0, 0]),
});

export const manifestSchema = z
  .object({
    schemaVersion: z.literal(1),
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lower-case letters, digits, ".", "_" and "-"'),
    version: z.string().min(1),
    description: z.string().optional(),
    file: z.string().min(1),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    labelsFile: z.string().min(1),
    input: inputSpecSchema,
    output: z.object({
      name: z.string().min(1),
      kind: z.enum(['logits', 'probabilities']),
    }),
    /**
     * Measured CPU-ms per image on one vCPU, decode plus inference: what one classify
     * invocation takes on is sized from it (shared/labeling/invocation-budget.ts). Absent:
     * estimated from the model's MACs and the bench's measured B0 and decode figures.
     */
    cpuMsPerImage: z.number().positive().optional(),
    /** Absent means fp32; `labeler model quantize` writes int8 variants. */
    precision: z.enum(['fp32', 'int8']).optional(),
    /** How an int8 variant was made, and from which fp32 model. */
    quantization: z
      .object({
        method: z.string(),
        activations: z.string(),
        weights: z.string(),
        calibrationImages: z.number().int().positive(),
        calibrationSource: z.string().optional(),
        from: z.object({ id: z.string(), version: z.string(), sha256: z.string() }),
      })
      .optional(),
  })
  .refine(
    (m) =>
      m.input.resize.resizeSize === undefined ||
      m.input.resize.resizeSize >= Math.min(m.input.width, m.input.height),
    { path: ['input', 'resize', 'resizeSize'], message: 'must be at least the crop size (width and height)' },
  );

export type InputSpec = z.infer<typeof inputSpecSchema>;
export type Manifest = z.infer<typeof manifestSchema>;

/** The model input's dimensions for a batch of `count` images, in the manifest's layout. */
export function inputDims(input: InputSpec, count: number): number[] {
  return input.layout === 'NCHW'
    ? [count, 3, input.height, input.width]
    : [count, input.height, input.width, 3];
}

export interface ModelBundle {
  readonly dir: string;
  readonly manifest: Manifest;
  readonly labels: readonly string[];
  readonly modelBytes: Uint8Array;
}

/**
 * Reads and checks a model folder's manifest.json alone (no model file, no checksum).
 * `ref` is a folder or a model name (resolveModelDir).
 */
export async function readManifest(ref: string): Promise<Manifest> {
  const dir = resolveModelDir(ref);
  const manifestPath = join(dir, 'manifest.json');
  const raw = await readFile(manifestPath, 'utf8').catch((cause: unknown) => {
    throw new ModelError(CODE.model.notFound, `no model manifest at ${manifestPath}`, { cause });
  });
  return parseManifest(raw, manifestPath);
}

/** readManifest for synthesis, where CDK constructs cannot wait: the same checks. */
export function readManifestSync(ref: string): Manifest {
  const manifestPath = join(resolveModelDir(ref), 'manifest.json');
  let raw: string;
  try {
    raw = readFileSync(manifestPath, 'utf8');
  } catch (cause) {
    throw new ModelError(CODE.model.notFound, `no model manifest at ${manifestPath}`, { cause });
  }
  return parseManifest(raw, manifestPath);
}

function parseManifest(raw: string, manifestPath: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (cause) {
    throw new ModelError(CODE.model.manifestInvalid, `${manifestPath} is not valid JSON`, { cause });
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ModelError(CODE.model.manifestInvalid, `${manifestPath}: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** Reads and checks a model folder (or named model): manifest schema, model checksum, labels file. */
export async function loadModelBundle(ref: string): Promise<ModelBundle> {
  const dir = resolveModelDir(ref);
  const manifest = await readManifest(dir);

  const modelPath = join(dir, manifest.file);
  const modelBytes = await readFile(modelPath).catch((cause: unknown) => {
    throw new ModelError(CODE.model.notFound, `model file ${modelPath} named by the manifest is missing`, {
      cause,
    });
  });
  const sha256 = createHash('sha256').update(modelBytes).digest('hex');
  if (sha256 !== manifest.sha256) {
    throw new ModelError(
      CODE.model.checksumMismatch,
      `${modelPath} has sha256 ${sha256}, the manifest expects ${manifest.sha256}`,
    );
  }

  const labelsPath = join(dir, manifest.labelsFile);
  const labelsText = await readFile(labelsPath, 'utf8').catch((cause: unknown) => {
    throw new ModelError(CODE.model.notFound, `labels file ${labelsPath} is missing`, { cause });
  });
  const labels = labelsText.split('\n').map((l) => l.trim());
  while (labels.length > 0 && labels[labels.length - 1] === '') labels.pop();
  if (labels.length === 0 || labels.some((l) => l === '')) {
    throw new ModelError(CODE.model.manifestInvalid, `${labelsPath} must list one non-empty label per line`);
  }
  return { dir, manifest, labels, modelBytes };
}
