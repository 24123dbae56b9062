import { CLASSIFY } from '../../shared/settings.ts';
import type { Context } from '../lib/context.ts';
import type { CostData, CostRow } from '../lib/types.ts';

/** AWS list prices (us-east-1) used for the estimate. */
export const PRICES = {
  x86PerGbSecond: 0.0000166667,
  armPerGbSecond: 0.0000133334,
  perMillionRequests: 0.2,
  rekognitionPerThousandImages: 1.0,
} as const;
const MB_PER_VCPU = 1769;

function dollarsPerMillion(
  msPerImage: number,
  memoryMb: number,
  perGbSecond: number,
  requests: number,
): number {
  return (memoryMb / 1024) * (msPerImage / 1000) * perGbSecond * 1e6 + requests;
}

/**
 * Lambda $ per million images from the measured time per image on one core. Lambda bills
 * wall time, so the one-core pinned pipeline's wall time per image is the billed time.
 */
export async function costSection(ctx: Context): Promise<CostData> {
  const requests = (1e6 / CLASSIFY.batchSize) * (PRICES.perMillionRequests / 1e6);
  const pipeline = ctx.data('pipeline');
  const oneCore = (pipeline?.rows ?? []).filter((r) => r.cpus === '0' && !r.error && r.imagesPerSecond > 0);
  const medium1 = oneCore.find((r) => r.set.startsWith('medium'));
  const mediumAll = (pipeline?.rows ?? [])
    .filter((r) => r.cpus === 'all' && !r.error && r.imagesPerSecond > 0)
    .sort((a, b) => b.imagesPerSecond - a.imagesPerSecond)[0];
  const cores = ctx.machine.availableParallelism;
  // Speed-up from 1 to `cores` cores (best all-core setting, medium images), scaled to
  // 3008 MB = 1.70 vCPU; never below 1: a bigger function can always run as the 1-vCPU one.
  const speedup = medium1 && mediumAll ? Math.max(1, mediumAll.imagesPerSecond / medium1.imagesPerSecond) : 1;
  const vcpus3008 = 3008 / MB_PER_VCPU;
  const speedup3008 = cores > 1 ? 1 + ((vcpus3008 - 1) * (speedup - 1)) / (cores - 1) : 1;

  const rows: CostRow[] = [];
  const add = (input: string, ms: number, cpuMs: number, source: string) => {
    const ms3008 = ms / speedup3008;
    rows.push({
      input,
      msPerImage: ms,
      cpuMsPerImage: cpuMs,
      source,
      x86_1769: dollarsPerMillion(ms, 1769, PRICES.x86PerGbSecond, requests),
      arm_1769: dollarsPerMillion(ms, 1769, PRICES.armPerGbSecond, requests),
      x86_3008: dollarsPerMillion(ms3008, 3008, PRICES.x86PerGbSecond, requests),
      arm_3008: dollarsPerMillion(ms3008, 3008, PRICES.armPerGbSecond, requests),
    });
  };
  for (const r of oneCore) {
    add(
      r.set,
      1000 / r.imagesPerSecond,
      r.cpuSecondsPerImage * 1000,
      'pipeline pinned to one core (wall per image)',
    );
  }
  if (rows.length === 0) {
    // Fallback: decode on one core + inference at one thread, added (no overlap).
    const inference = ctx.data('inference');
    const pre = ctx.data('preprocess');
    const t1 = inference?.settings
      .filter((s) => s.threads === 1 && !s.error)
      .sort((a, b) => b.imagesPerSecond - a.imagesPerSecond)[0];
    for (const p of pre?.rows ?? []) {
      if (p.mode !== 'one core' || p.error || !t1) continue;
      const ms = 1000 / p.imagesPerSecond + t1.msPerImage;
      add(p.set, ms, ms, 'preprocess (one core) + inference (1 thread), summed');
    }
  }
  if (rows.length === 0) throw new Error('needs the pipeline section (or preprocess + inference) results');
  return {
    assumptions: [
      `1769 MB = 1 vCPU: billed time per image = the wall time per image measured pinned to one core of this ${ctx.machine.cpuModel}; S3 reads overlap compute.`,
      `3008 MB = ${vcpus3008.toFixed(2)} vCPU: the ${cores}-core speed-up measured on medium images (${speedup.toFixed(2)}x) scaled to ${vcpus3008.toFixed(2)} vCPU (${speedup3008.toFixed(2)}x; never below 1x: a bigger function can always run as the 1-vCPU one).`,
      'arm64 prices applied to the x86 times: Graviton speed is not measured here.',
      `Requests: $${PRICES.perMillionRequests} per million invocations, one invocation per SQS batch of ${CLASSIFY.batchSize} (CLASSIFY.batchSize) = $${requests.toFixed(3)} per million images.`,
      'Not included: S3 GET/PUT requests, SQS, DynamoDB writes, data transfer, init (cold start) duration.',
    ],
    requestsPerMillion: requests,
    rows,
    rekognitionPerMillion: PRICES.rekognitionPerThousandImages * 1000,
  };
}
