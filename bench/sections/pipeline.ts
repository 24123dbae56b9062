import { errorMessage } from '../../shared/errors.ts';
import { LABELING } from '../../shared/settings.ts';
import { runNodeWorker } from '../lib/child.ts';
import type { Context } from '../lib/context.ts';
import { ensureImages, IMAGE_KINDS, type ImageKind, photoPaths } from '../lib/images.ts';
import type { PipelineData, PipelineRow } from '../lib/types.ts';
import type { PipelineArgs, PipelineResult } from '../workers/pipeline.ts';

interface Plan {
  readonly name: string;
  readonly set: string;
  readonly files: readonly string[];
  readonly cpus?: string;
  readonly threads: number;
  readonly seconds: number;
}

/**
 * The labeler's in-process pipeline (decode + infer, overlapped; images from memory, no
 * queue or database): on all cores with the chosen defaults, and pinned to one core per
 * image size, which is what a 1-vCPU Lambda gets and what the cost section prices.
 */
export async function pipelineSection(ctx: Context): Promise<PipelineData> {
  const cfg = ctx.config.pipeline;
  const cores = ctx.machine.availableParallelism;
  const batchSize = ctx.data('inference')?.chosen.batchSize ?? LABELING.batchSize;
  const medium = await ensureImages('medium', cfg.files, (m) => ctx.log(m));
  const plans: Plan[] = [
    {
      name: `all ${cores} cores`,
      set: IMAGE_KINDS.medium.label,
      files: medium,
      threads: cores,
      seconds: cfg.seconds,
    },
  ];
  if (cores > 1) {
    plans.push({
      name: `all ${cores} cores, 1 inference thread`,
      set: IMAGE_KINDS.medium.label,
      files: medium,
      threads: 1,
      seconds: cfg.seconds,
    });
  }
  const counts = ctx.config.preprocess.counts;
  for (const kind of Object.keys(IMAGE_KINDS) as ImageKind[]) {
    const files = await ensureImages(kind, kind === 'medium' ? cfg.files : counts[kind], (m) => ctx.log(m));
    plans.push({
      name: 'one core',
      set: IMAGE_KINDS[kind].label,
      files,
      cpus: '0',
      threads: 1,
      seconds: cfg.oneCoreSeconds,
    });
  }
  const photos = await photoPaths();
  if (photos.length > 0) {
    plans.push({
      name: 'one core',
      set: `real photos (${photos.length}, 0.5-0.8 MP)`,
      files: photos,
      cpus: '0',
      threads: 1,
      seconds: cfg.oneCoreSeconds,
    });
  }

  const rows: PipelineRow[] = [];
  for (const plan of plans) {
    const args: PipelineArgs = {
      modelDir: ctx.b0.dir,
      files: plan.files,
      batchSize,
      threads: plan.threads,
      source: 'memory',
      seconds: plan.seconds,
      minImages: batchSize * 2,
    };
    const base = {
      name: plan.name,
      set: plan.set,
      cpus: plan.cpus ?? 'all',
      batchSize,
      threads: plan.threads,
    };
    try {
      const r = await runNodeWorker<PipelineResult>('pipeline', args, {
        timeoutMs: ctx.timeoutMs(plan.seconds + 60),
        ...(plan.cpus ? { cpus: plan.cpus } : {}),
      });
      rows.push({
        ...base,
        concurrency: r.concurrency,
        images: r.images,
        imagesPerSecond: r.imagesPerSecond,
        cpuSecondsPerImage: r.cpuSecondsPerImage,
        msPerImage: r.msPerImage,
        peakRssMb: r.peakRssMb,
        ...(r.failed > 0 ? { error: `${r.failed} images failed` } : {}),
      });
      ctx.log(
        `pipeline ${plan.name}, ${plan.set}: ${r.imagesPerSecond.toFixed(1)} images/s, ` +
          `${(r.cpuSecondsPerImage * 1000).toFixed(1)} CPU-ms per image`,
      );
    } catch (error) {
      ctx.log(`pipeline ${plan.name}, ${plan.set} failed: ${errorMessage(error)}`);
      rows.push({
        ...base,
        concurrency: 0,
        images: 0,
        imagesPerSecond: 0,
        cpuSecondsPerImage: 0,
        msPerImage: { read: 0, preprocess: 0, infer: 0 },
        peakRssMb: 0,
        error: errorMessage(error),
      });
    }
  }
  return { rows, recommendation: recommend(rows, cores) };
}

/** Whether, with decode on the same cores, inference should take all cores or one. */
function recommend(rows: readonly PipelineRow[], cores: number): string {
  const all = rows.find((r) => r.cpus === 'all' && r.threads === cores && !r.error);
  const one = rows.find((r) => r.cpus === 'all' && r.threads === 1 && cores > 1 && !r.error);
  if (!all || !one) return 'intra-op threads = cores (no comparison measured)';
  const ratio = one.imagesPerSecond / all.imagesPerSecond;
  const verdict =
    ratio > 1.03
      ? `1 intra-op thread is ${((ratio - 1) * 100).toFixed(0)} % faster: while the next batch decodes on the other cores, extra inference threads only wait or spin. Workers that decode and infer on the same cores should set 1 intra-op thread (INTRA_OP_THREADS=1) and decode \`cores\` images at once.`
      : ratio < 0.97
        ? `intra-op threads = cores is ${((1 / ratio - 1) * 100).toFixed(0)} % faster than 1 thread: keep the default.`
        : 'both are within 3 %: keep the default (threads = cores), which also serves a 1-vCPU Lambda.';
  return `With decode overlapping inference on ${cores} cores: ${all.imagesPerSecond.toFixed(1)} images/s at ${cores} intra-op threads vs ${one.imagesPerSecond.toFixed(1)} at 1. ${verdict}`;
}
