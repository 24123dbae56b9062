import { join } from 'node:path';
import { listFiles } from '../shared/local-files.ts';
import {
  DEFAULT_PYTHON,
  EFFICIENTNET_ARCHS,
  type EfficientNetArch,
  exportEfficientNet,
  PYTHON_ENV,
} from '../shared/model/export.ts';
import { readManifest } from '../shared/model/manifest.ts';
import { modelsCacheDir } from '../shared/model/model-store.ts';
import { pullModel, REGISTRY_ENV } from '../shared/model/pull.ts';
import { quantizeModel } from '../shared/model/quantize.ts';
import { DEFAULT_MODEL_DIR } from '../shared/paths.ts';
import { oneOf, parse, positiveInt, UsageError } from './args.ts';
import { PercentProgress } from './progress.ts';

export const MODEL_HELP = `Usage: labeler model export --arch <arch> [--weights imagenet|random] [--out <dir>]
       labeler model pull <name> [--out <dir>] [--registry <file>]
       labeler model quantize --calibration <folder|file> [--calibration ...] [--model <m>] [--images <n>] [--out <dir>]

Gets models other than the bundled Fashion-MNIST one. Without --out, a model goes to
the models cache ($LABELER_MODELS_DIR, else ~/.cache/labeler/models), under its name, and
"--model <name>" (label, local up, local run, jobs, query) finds it there.

export   exports a torchvision EfficientNet to ONNX (batch axis dynamic) with its
         manifest: crop size, resize size, interpolation, mean and std from the
         weights' own torchvision transform, and the 1,000 ImageNet class names.
         Needs Python with torch, torchvision and onnx (${DEFAULT_PYTHON}, or
         ${PYTHON_ENV}): apt-get install -y python3-torch python3-torchvision python3-onnx.
  --arch <arch>      ${EFFICIENTNET_ARCHS.join(', ')}
  --weights <w>      imagenet (downloads torchvision's weights once; the default) or
                     random (no download: same graph and preprocessing, random labels)
  --out <dir>        default: <models cache>/<arch> (<arch>-random for random weights)

pull     downloads a pinned ONNX export listed in the registry (models/registry.json),
         resumes an interrupted download, refuses a file whose sha256 differs
         (model/checksum-mismatch), writes the manifest.
  --out <dir>        default: <models cache>/<name>
  --registry <file>  default: $${REGISTRY_ENV}, or the registry in the repo

quantize writes a static INT8 (QDQ) variant of an FP32 model: 7-bit int8 weights per
         output channel, uint8 activations with ranges measured on calibration images
         (decoded by the labeler's own preprocessing, so pick images like the ones it
         will label). The new folder's manifest says precision "int8", id "<id>-int8",
         and which FP32 model it came from; label with it by --model <folder>. Check
         what it costs in agreement before relying on it (npm run bench -- --only int8).
  --calibration <p>  image files or folders (walked recursively); repeatable
  --model <m>        the FP32 model: a folder or a pulled name (default: the bundled one)
  --images <n>       use at most the first n calibration images, in name order (default 1000)
  --out <dir>        default: <models cache>/<id>-int8

Exit status: 0 done; 2 usage error; 3 the model could not be made (the code says why:
model/export-needs-torch, model/export-download-failed, model/download-failed,
model/checksum-mismatch, model/unknown-name, model/calibration-empty,
model/already-quantized, model/out-is-source, ...).`;

export async function modelCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(`${MODEL_HELP}\n`);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'export') return exportCommand(rest);
  if (sub === 'pull') return pullCommand(rest);
  if (sub === 'quantize') return quantizeCommand(rest);
  throw new UsageError(`unknown subcommand "${sub}" (export, pull or quantize)`);
}

async function exportCommand(argv: string[]): Promise<number> {
  const parsed = parseOrHelp(argv, {
    arch: { type: 'string' },
    weights: { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.arch === undefined)
    throw new UsageError(`--arch is required (${EFFICIENTNET_ARCHS.join(', ')})`);
  const arch: EfficientNetArch = oneOf(values.arch, '--arch', EFFICIENTNET_ARCHS, 'efficientnet_b0');
  const weights = oneOf(values.weights, '--weights', ['imagenet', 'random'], 'imagenet');
  const out = values.out ?? join(modelsCacheDir(), weights === 'random' ? `${arch}-random` : arch);
  process.stderr.write(`exporting ${arch} (${weights} weights) to ${out}\n`);
  const report = await exportEfficientNet({ arch, weights, out });
  process.stdout.write(`${JSON.stringify(report)}\n`);
  return 0;
}

async function pullCommand(argv: string[]): Promise<number> {
  const parsed = parseOrHelp(argv, {
    out: { type: 'string' },
    registry: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const [name, ...extra] = positionals;
  if (name === undefined) throw new UsageError('name the model to pull');
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const progress = new PercentProgress();
  const result = await pullModel(name, {
    ...(values.registry ? { registry: values.registry } : {}),
    ...(values.out ? { out: values.out } : {}),
    onProgress: ({ received, total, resumedFrom }) => {
      if (resumedFrom !== undefined) process.stderr.write(`resuming at byte ${resumedFrom} of ${total}\n`);
      progress.show(received, total);
    },
  });
  progress.finish();
  process.stdout.write(
    `${JSON.stringify({
      name,
      dir: result.dir,
      id: result.manifest.id,
      version: result.manifest.version,
      sha256: result.manifest.sha256,
      resumedFrom: result.resumedFrom,
      downloaded: result.downloaded,
    })}\n`,
  );
  return 0;
}

async function quantizeCommand(argv: string[]): Promise<number> {
  const parsed = parseOrHelp(argv, {
    calibration: { type: 'string', multiple: true },
    model: { type: 'string' },
    images: { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const calibration = values.calibration ?? [];
  if (calibration.length === 0) throw new UsageError('--calibration is required: image files or folders');
  const images = positiveInt(values.images, '--images', 1000);
  const model = values.model ?? DEFAULT_MODEL_DIR;
  const manifest = await readManifest(model);
  const out = values.out ?? join(modelsCacheDir(), `${manifest.id}-int8`);
  const files = (await listFiles(calibration)).slice(0, images).map((f) => f.path);
  process.stderr.write(`calibrating ${manifest.id} on ${files.length} files, writing ${out}\n`);
  const progress = new PercentProgress();
  const report = await quantizeModel({
    model,
    calibration: files,
    out,
    calibrationSource: calibration.join(', '),
    onProgress: (done, total) => progress.show(done, total),
  });
  progress.finish();
  for (const { file, code } of report.skipped) process.stderr.write(`skipped ${file}: [${code}]\n`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  return 0;
}

/** The subcommand's options, or undefined once --help has printed the model help. */
function parseOrHelp<const O extends Parameters<typeof parse>[1]>(argv: string[], options: O) {
  const parsed = parse(argv, options);
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`${MODEL_HELP}\n`);
    return undefined;
  }
  return parsed;
}
