import { join } from 'node:path';
import { errorMessage } from '../../shared/errors.ts';
import { BENCH_DIR, gist, runChild, runNodeWorker, SYSTEM_PYTHON } from '../lib/child.ts';
import type { Context } from '../lib/context.ts';
import { ensureImages, IMAGE_KINDS } from '../lib/images.ts';
import type { PeerRow, PeersData } from '../lib/types.ts';
import type { PipelineArgs, PipelineResult } from '../workers/pipeline.ts';

interface Throughput {
  images: number;
  imagesPerSecond: number;
  cpuSecondsPerImage: number;
}
interface TorchVariantResult extends Throughput {
  name: string;
}

/**
 * The same medium JPEGs, read from disk, labelled with the same B0 weights by: ours (the
 * labeler's defaults), peer (a) the plain one-image-at-a-time Node approach, peer (b)
 * PyTorch eager with torchvision transforms.
 */
export async function peersSection(ctx: Context): Promise<PeersData> {
  const cfg = ctx.config.peers;
  const files = await ensureImages('medium', cfg.files, (m) => ctx.log(m));
  const errors: string[] = [];
  const row = (name: string, r: Throughput, note?: string): PeerRow => ({
    name,
    images: r.images,
    imagesPerSecond: r.imagesPerSecond,
    cpuSecondsPerImage: r.cpuSecondsPerImage,
    ...(note ? { note } : {}),
  });

  let ours: PeerRow | null = null;
  try {
    const args: PipelineArgs = {
      modelDir: ctx.b0.dir,
      files,
      source: 'disk',
      seconds: cfg.seconds,
      minImages: 8,
    };
    const r = await runNodeWorker<PipelineResult>('pipeline', args, {
      timeoutMs: ctx.timeoutMs(cfg.seconds + 60),
    });
    ours = row(
      'ours: createImageLabeler defaults, labelAll',
      r,
      `batch ${r.batchSize}, ${r.concurrency} in flight`,
    );
    ctx.log(`peers: ours ${r.imagesPerSecond.toFixed(1)} images/s`);
  } catch (error) {
    errors.push(`ours: ${errorMessage(error)}`);
  }

  let naive: PeerRow | null = null;
  try {
    const r = await runNodeWorker<Throughput>(
      join(BENCH_DIR, 'peers', 'naive.ts'),
      { modelPath: join(ctx.b0.dir, 'model.onnx'), files, seconds: cfg.seconds, minImages: 4 },
      { timeoutMs: ctx.timeoutMs(cfg.seconds + 60) },
    );
    naive = row('(a) naive Node: one image at a time, default session', r);
    ctx.log(`peers: naive ${r.imagesPerSecond.toFixed(1)} images/s`);
  } catch (error) {
    errors.push(`naive: ${errorMessage(error)}`);
  }

  const torch: PeerRow[] = [];
  let torchVersion: string | undefined;
  const threads = ctx.machine.availableParallelism;
  const args = {
    stateDict: ctx.b0.stateDict,
    files,
    threads,
    seconds: cfg.seconds,
    minImages: 1,
    variants: cfg.torchVariants,
  };
  try {
    // Import + model build + a warm-up batch per variant: allow generously, but within the budget.
    const want = 40 + cfg.torchVariants.length * (2 * cfg.seconds + 20);
    const outcome = await runChild(
      SYSTEM_PYTHON,
      [join(BENCH_DIR, 'peers', 'torch_eager.py'), JSON.stringify(args)],
      {
        timeoutMs: ctx.timeoutMs(want, 30),
      },
    );
    for (const line of outcome.stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      const json = JSON.parse(line) as { variant?: TorchVariantResult; summary?: boolean; torch?: string };
      if (json.variant) {
        torch.push(row(`(b) PyTorch eager, ${threads} threads, ${json.variant.name}`, json.variant));
        ctx.log(`peers: torch ${json.variant.name} ${json.variant.imagesPerSecond.toFixed(1)} images/s`);
      }
      if (json.summary && json.torch) torchVersion = json.torch;
    }
    if (outcome.code !== 0) {
      errors.push(
        `torch: ${outcome.timedOut ? 'timed out' : `exited with ${outcome.code}`}` +
          ` after ${torch.length} variant(s): ${gist(outcome.stderr)}`,
      );
    }
  } catch (error) {
    errors.push(`torch: ${errorMessage(error)}`);
  }
  for (const e of errors) ctx.log(`peers: ${e}`);
  return {
    set: IMAGE_KINDS.medium.label,
    files: files.length,
    ours,
    naive,
    torch,
    ...(torchVersion ? { torchVersion } : {}),
    errors,
  };
}
