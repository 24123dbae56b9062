import { errorMessage } from '../../shared/errors.ts';
import { runNodeWorker } from '../lib/child.ts';
import type { Context } from '../lib/context.ts';
import { ensureNullModel } from '../lib/null-model.ts';
import type { OverheadData, OverheadRow } from '../lib/types.ts';
import type { OverheadArgs, OverheadResult } from '../workers/classifier-overhead.ts';

/**
 * The project's Classifier against a raw `session.run` (same model, options, threads and
 * input) at the batch sizes a GPU worker uses. On the CPU, B0's inference dwarfs what the
 * Classifier adds around it; the null model (B0's tensors, almost no compute) shows that
 * overhead alone, in ms per batch, to hold against a GPU's inference time per batch.
 */
export async function classifierSection(ctx: Context): Promise<OverheadData> {
  const cfg = ctx.config.classifier;
  const threads = ctx.machine.availableParallelism;
  const models = [
    { name: 'B0', dir: ctx.b0.dir, seconds: cfg.seconds },
    { name: 'null', dir: await ensureNullModel(ctx.b0.dir), seconds: cfg.nullSeconds },
  ];
  const rows: OverheadRow[] = [];
  for (const model of models) {
    for (const batchSize of cfg.batchSizes) {
      const args: OverheadArgs = {
        modelDir: model.dir,
        batchSize,
        threads,
        seconds: model.seconds,
        minRuns: cfg.minRuns,
        warmupRuns: 1,
      };
      try {
        // Its own limit, not the run's budget (as scaling and int8): the sections after the
        // decode section start past 400 s on a busy 2-core machine and must still measure.
        const r = await runNodeWorker<OverheadResult>('classifier-overhead', args, {
          timeoutMs: (model.seconds * 2 + 300) * 1000,
        });
        rows.push({ model: model.name, ...r });
        ctx.log(
          `classifier ${model.name} b${batchSize}: ${r.classifierImagesPerSecond.toFixed(1)} vs raw ` +
            `${r.rawImagesPerSecond.toFixed(1)} images/s (${(r.ratio * 100).toFixed(0)} %), p50 ` +
            `${r.classifierMsP50.toFixed(1)} vs ${r.rawMsP50.toFixed(1)} ms per batch`,
        );
      } catch (error) {
        ctx.log(`classifier ${model.name} b${batchSize} failed: ${errorMessage(error)}`);
        rows.push({
          model: model.name,
          batchSize,
          threads,
          runs: 0,
          rawImagesPerSecond: 0,
          classifierImagesPerSecond: 0,
          ratio: 0,
          rawMsP50: 0,
          classifierMsP50: 0,
          error: errorMessage(error),
        });
      }
    }
  }
  return { rows };
}
