import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { CODE } from '../error-codes.ts';
import { errorMessage, ModelError } from '../errors.ts';
import { PACKAGE_ROOT } from '../paths.ts';
import { loadModelBundle } from './manifest.ts';

/** The torchvision EfficientNets `labeler model export` knows, by torchvision's builder name. */
export const EFFICIENTNET_ARCHS = [
  'efficientnet_b0',
  'efficientnet_b1',
  'efficientnet_b2',
  'efficientnet_b3',
  'efficientnet_b4',
  'efficientnet_b5',
  'efficientnet_b6',
  'efficientnet_b7',
  'efficientnet_v2_s',
  'efficientnet_v2_m',
  'efficientnet_v2_l',
] as const;
export type EfficientNetArch = (typeof EFFICIENTNET_ARCHS)[number];
export type ExportWeights = 'imagenet' | 'random';

export const EXPORT_SCRIPT = join(PACKAGE_ROOT, 'models', 'export_efficientnet.py');
/** Debian's interpreter, where apt's python3-torch lives; another python3 may come first on PATH. */
export const DEFAULT_PYTHON = '/usr/bin/python3';
export const PYTHON_ENV = 'LABELER_PYTHON';
export const TORCH_INSTALL_HINT =
  'apt-get install -y python3-torch python3-torchvision python3-onnx (used through /usr/bin/python3), ' +
  `or point ${PYTHON_ENV} at a Python with torch, torchvision and onnx`;

/** What export_efficientnet.py reports on success (its export.json). */
export interface ExportReport {
  readonly dir: string;
  readonly id: string;
  readonly arch: EfficientNetArch;
  readonly weights: ExportWeights;
  readonly weightsEnum: string;
  readonly torch: string;
  readonly torchvision: string;
  readonly params: number;
  readonly macs: number | null;
  readonly flops: number | null;
  readonly bytes: number;
  readonly seconds: number;
}

export interface ExportOptions {
  readonly arch: EfficientNetArch;
  readonly weights: ExportWeights;
  readonly out: string;
  /** @default $LABELER_PYTHON or /usr/bin/python3 */
  readonly python?: string;
  /** Where the script's own output (torch's warnings) goes. @default 'inherit' */
  readonly stderr?: 'inherit' | 'ignore';
}

/**
 * Runs models/export_efficientnet.py and checks its result as the pipeline will load it
 * (manifest schema, checksum, labels). Throws ModelError: `model/export-needs-torch` when
 * the interpreter or torch/torchvision/onnx is missing, `model/export-download-failed`
 * when ImageNet weights cannot be fetched, `model/export-failed` otherwise.
 */
export async function exportEfficientNet(options: ExportOptions): Promise<ExportReport> {
  const python = options.python ?? process.env[PYTHON_ENV] ?? DEFAULT_PYTHON;
  const out = resolve(options.out);
  const args = [EXPORT_SCRIPT, '--arch', options.arch, '--weights', options.weights, '--out', out];
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((done, fail) => {
    const child = spawn(python, args, { stdio: ['ignore', 'pipe', options.stderr ?? 'inherit'] });
    let text = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      text += d;
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      fail(
        error.code === 'ENOENT'
          ? new ModelError(
              CODE.model.exportNeedsTorch,
              `no Python interpreter at ${python}; ${TORCH_INSTALL_HINT}`,
            )
          : new ModelError(CODE.model.exportFailed, `could not run ${python}: ${errorMessage(error)}`, {
              cause: error,
            }),
      );
    });
    child.on('close', (status) => done({ code: status, stdout: text }));
  });
  const last = stdout.trim().split('\n').pop() ?? '';
  let result: { ok?: boolean; error?: { code?: string; message?: string } } & Partial<ExportReport>;
  try {
    result = JSON.parse(last);
  } catch {
    throw new ModelError(
      CODE.model.exportFailed,
      `${EXPORT_SCRIPT} exited with status ${code} without a result line (its errors are above)`,
    );
  }
  if (!result.ok || code !== 0) {
    const reported = result.error?.code;
    const message = result.error?.message ?? `exited with status ${code}`;
    // The script names these two itself (models/export_efficientnet.py); anything else is an export failure.
    const known = [CODE.model.exportNeedsTorch, CODE.model.exportDownloadFailed] as const;
    const named = known.find((k) => k === reported);
    throw new ModelError(named ?? CODE.model.exportFailed, message);
  }
  // The folder must load exactly as the pipeline will load it.
  await loadModelBundle(out);
  return result as ExportReport;
}
