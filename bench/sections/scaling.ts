import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, LabelerError } from '../../shared/errors.ts';
import { type EfficientNetArch, EXPORT_SCRIPT, exportEfficientNet } from '../../shared/model/export.ts';
import { loadModelBundle } from '../../shared/model/manifest.ts';
import { CLASSIFY } from '../../shared/settings.ts';
import { CACHE_DIR, runNodeWorker } from '../lib/child.ts';
import { type Context, SkipSection } from '../lib/context.ts';
import type { ScalingData, ScalingRow } from '../lib/types.ts';
import type { InferArgs, InferResult } from '../workers/infer.ts';
import { PRICES } from './cost.ts';
import { peakGflops } from './inference.ts';

/** The compound-scaling curve a user picks from: the smallest, a middle and the largest B. */
export const SCALING_ARCHS: readonly EfficientNetArch[] = [
  'efficientnet_b0',
  'efficientnet_b3',
  'efficientnet_b7',
];
const LAMBDA_MB = 1769;

interface ExportStamp {
  readonly macs: number | null;
  readonly params: number;
  readonly torchvision: string;
}

/** Exports (random weights) unless a checked export from the same script is already there. */
async function ensureExport(
  ctx: Context,
  arch: EfficientNetArch,
): Promise<{ dir: string; stamp: ExportStamp }> {
  const dir = join(CACHE_DIR, 'scaling', arch);
  const stampPath = join(dir, 'export.json');
  const script = await readFile(EXPORT_SCRIPT, 'utf8');
  const scriptPath = join(dir, 'exported-by.py');
  if (existsSync(stampPath) && existsSync(scriptPath) && (await readFile(scriptPath, 'utf8')) === script) {
    try {
      await loadModelBundle(dir);
      return { dir, stamp: JSON.parse(await readFile(stampPath, 'utf8')) as ExportStamp };
    } catch {
      // damaged: export again
    }
  }
  ctx.log(`exporting ${arch} (random weights) with models/export_efficientnet.py`);
  try {
    const report = await exportEfficientNet({ arch, weights: 'random', out: dir, stderr: 'ignore' });
    await writeFile(scriptPath, script);
    ctx.log(`${arch} exported in ${report.seconds} s`);
    return { dir, stamp: report };
  } catch (error) {
    if (error instanceof LabelerError && error.code === 'model/export-needs-torch') {
      throw new SkipSection(`skipped: ${error.message}`);
    }
    throw error;
  }
}

/**
 * B0, B3 and B7 at their native resolutions (224, 300, 600 px), inference only, at the
 * inference section's chosen thread count: images/s, CPU per image, share of the FP32
 * limit (by each model's own FLOPs) and Lambda $ per million.
 */
export async function scalingSection(ctx: Context): Promise<ScalingData> {
  const cfg = ctx.config.scaling;
  const threads = ctx.data('inference')?.chosen.threads ?? ctx.machine.availableParallelism;
  const requests = (1e6 / CLASSIFY.batchSize) * (PRICES.perMillionRequests / 1e6);
  const rows: ScalingRow[] = [];
  for (const arch of SCALING_ARCHS) {
    const { dir, stamp } = await ensureExport(ctx, arch);
    const bundle = await loadModelBundle(dir);
    const gflopPerImage = (2 * (stamp.macs ?? 0)) / 1e9;
    const base = {
      arch,
      resolution: bundle.manifest.input.width,
      resizeSize: bundle.manifest.input.resize.resizeSize ?? bundle.manifest.input.width,
      params: stamp.params,
      gflopPerImage,
      batchSize: cfg.batchSize,
      threads,
    };
    const args: InferArgs = {
      modelDir: dir,
      batchSize: cfg.batchSize,
      threads,
      seconds: cfg.seconds,
      minRuns: cfg.minRuns,
      warmupRuns: cfg.warmupRuns,
    };
    try {
      const r = await runNodeWorker<InferResult>('infer', args, {
        // Its own limit, not the run's budget: B7 alone can take minutes on two busy cores.
        timeoutMs: (cfg.seconds + 600) * 1000,
      });
      const peak = peakGflops(ctx, threads);
      const cpuSeconds = r.cpuSecondsPerImage;
      rows.push({
        ...base,
        imagesPerSecond: r.imagesPerSecond,
        cpuMsPerImage: cpuSeconds * 1000,
        fractionOfFlopLimit: peak === null ? null : (r.imagesPerSecond * gflopPerImage) / peak,
        // One Lambda vCPU (1769 MB) bills its wall time, which is this CPU time per image.
        lambdaX86PerMillion: (LAMBDA_MB / 1024) * cpuSeconds * PRICES.x86PerGbSecond * 1e6 + requests,
        peakRssMb: r.peakRssMb,
      });
      ctx.log(
        `${arch} ${base.resolution} px: ${r.imagesPerSecond.toFixed(2)} images/s, ${(cpuSeconds * 1000).toFixed(0)} CPU-ms per image`,
      );
    } catch (error) {
      if (error instanceof SkipSection) throw error;
      rows.push({
        ...base,
        imagesPerSecond: 0,
        cpuMsPerImage: 0,
        fractionOfFlopLimit: null,
        lambdaX86PerMillion: 0,
        peakRssMb: 0,
        error: errorMessage(error),
      });
    }
  }
  return { rows, requestsPerMillion: requests };
}
