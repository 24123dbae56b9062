/**
 * `jobs start --dry-run` and the page's estimate (issue 22, item 3): how many images a job
 * would label, what it would cost all in and how long it would take on each target, and
 * which target `--target auto` would choose, from one count and one set of numbers.
 * Nothing is started: the count lists the prefix (and, in mode `stale`, reads the existing
 * results), as the planner and the workers would.
 */

import { CLASSIFY } from '../settings.ts';
import {
  type DynamoFootprint,
  estimateTarget,
  type StackCapacity,
  type TargetEstimate,
} from './capacity-plan.ts';
import { chooseTarget, type MeasuredRates, type ModelProfile, type TargetChoice } from './cost-model.ts';
import type { JobMode } from './jobs.ts';
import { describeSample, inSample, resolveSample, type SampleSpec, sampleSize } from './sample.ts';

/** Objects listed before a count stops and says "at least": 100 ListObjectsV2 pages. */
export const ESTIMATE_LIST_LIMIT = 100_000;

export interface ListedKey {
  readonly key: string;
  readonly eTag: string;
}

export interface CountPorts {
  /** The prefix's objects, a ListObjectsV2 page at a time, in order. */
  listPages(): AsyncIterable<readonly ListedKey[]>;
  /**
   * Of these objects, how many this model version already labeled with the same content
   * (eTag): what a job in mode `stale` skips.
   */
  countLabeled(objects: readonly ListedKey[]): Promise<number>;
}

export interface JobCount {
  /** Objects listed (folder markers excluded, as the planner does). */
  readonly objects: number;
  /** Those the job would label: all of them in mode `all`, the stale ones in mode `stale`. */
  readonly images: number;
  /** False when the listing stopped at the limit: the prefix holds at least `objects`. */
  readonly complete: boolean;
  readonly mode: JobMode;
  /** `--sample`: `images` counts only the sampled objects (and in mode stale, the stale ones among them). */
  readonly sample?: SampleSpec;
}

/**
 * Counts a job's images, listing until the prefix ends or `atMost` objects were seen (then
 * the count is a lower bound, marked as such: a prefix of millions costs at most
 * atMost / 1,000 listings, and in mode `stale` as many result reads).
 */
export async function countJobImages(
  ports: CountPorts,
  options: { readonly mode: JobMode; readonly atMost?: number; readonly sample?: SampleSpec },
): Promise<JobCount> {
  const spec = options.sample;
  // A count's bound has listed the whole prefix already: its count is exact, never "at least".
  const atMost = spec && 'count' in spec ? Number.POSITIVE_INFINITY : (options.atMost ?? ESTIMATE_LIST_LIMIT);
  // The planner's own selection: a count's bound costs one more listing, as at the start.
  const sample = spec
    ? await resolveSample(spec, async function* () {
        for await (const page of ports.listPages()) yield page.map((o) => o.key);
      })
    : undefined;
  let objects = 0;
  let images = 0;
  let complete = true;
  for await (const page of ports.listPages()) {
    const listed = page.filter((o) => !o.key.endsWith('/'));
    const taken = listed.slice(0, atMost - objects);
    // A page with more than the limit leaves, a later page shows more exists.
    if (taken.length < listed.length) complete = false;
    objects += taken.length;
    const chosen = sample ? taken.filter((o) => inSample(sample, o.key)) : taken;
    if (options.mode === 'stale' && chosen.length > 0)
      images += chosen.length - (await ports.countLabeled(chosen));
    else if (options.mode === 'all') images += chosen.length;
    if (!complete) break;
  }
  return { objects, images, complete, mode: options.mode, ...(spec ? { sample: spec } : {}) };
}

export interface JobEstimate {
  readonly bucket: string;
  readonly prefix: string;
  readonly model: string;
  readonly count: JobCount;
  /** Lambda, then the GPU workers when the stack has them. */
  readonly targets: readonly TargetEstimate[];
  /** What `--target auto` would choose for this count, and why. */
  readonly auto: TargetChoice;
}

/** The estimate for a counted job: each target's figures, and auto's choice on the same count. */
export function estimateJob(input: {
  readonly bucket: string;
  readonly prefix: string;
  readonly model: ModelProfile;
  readonly count: JobCount;
  readonly capacity: StackCapacity;
  /** The local stack's GPU worker: runs on the CPU, so there is no GPU to price. */
  readonly gpuWorkerOnCpu?: boolean;
  readonly rates?: MeasuredRates;
  readonly footprint?: DynamoFootprint;
}): JobEstimate {
  const { model, count, capacity } = input;
  const common = {
    model,
    images: count.images,
    capacity,
    ...(input.rates ? { rates: input.rates } : {}),
    ...(input.footprint ? { footprint: input.footprint } : {}),
  };
  const targets = [
    estimateTarget({ target: 'lambda', ...common }),
    ...(capacity.gpuInstanceType ? [estimateTarget({ target: 'gpu', ...common })] : []),
  ];
  const auto = chooseTarget({
    model,
    images: count.images,
    atLeast: !count.complete,
    gpuInstanceType: capacity.gpuInstanceType,
    ...(input.gpuWorkerOnCpu ? { gpuWorkerOnCpu: true } : {}),
    memoryMb: capacity.memoryMb,
    // As cli/auto-target.ts prices Lambda requests, so the two agree.
    batchSize: CLASSIFY.batchSize,
    ...(input.rates ? { rates: input.rates } : {}),
  });
  return { bucket: input.bucket, prefix: input.prefix, model: model.name, count, targets, auto };
}

/** The `--format json` shape: stable field names, dollars and seconds as numbers. */
export function printedEstimate(estimate: JobEstimate): Record<string, unknown> {
  const throughput = (t: TargetEstimate['configured'] | null) =>
    t && {
      workers: t.workers,
      imagesPerSecond: round(t.imagesPerSecond, 1),
      boundBy: t.boundBy,
      seconds: Math.round(t.seconds),
    };
  return {
    dryRun: true,
    bucket: estimate.bucket,
    prefix: estimate.prefix,
    model: estimate.model,
    mode: estimate.count.mode,
    objects: estimate.count.objects,
    images: estimate.count.images,
    ...(estimate.count.sample
      ? { sample: { size: sampleSize(estimate.count.sample), seed: estimate.count.sample.seed } }
      : {}),
    // false: the listing stopped at its limit and the counts are lower bounds.
    complete: estimate.count.complete,
    targets: estimate.targets.map((t) => ({
      target: t.target,
      ...(t.instanceType ? { instanceType: t.instanceType } : {}),
      images: t.images,
      // Unrounded: a small job's dollars are fractions of a cent.
      dollars: t.dollars,
      perThousand: t.perThousand,
      configured: throughput(t.configured),
      defaultQuotas: throughput(t.defaultQuotas),
      estimates: t.estimates,
    })),
    auto: { target: estimate.auto.target, reason: estimate.auto.reason },
  };
}

/** The text form: one block per target. */
export function describeEstimate(estimate: JobEstimate): string {
  const { count } = estimate;
  const atLeast = count.complete ? '' : 'at least ';
  const images =
    count.mode === 'stale'
      ? `${atLeast}${count.images} to label (mode stale) of ${atLeast}${count.objects} objects`
      : `${atLeast}${count.images} (mode all)`;
  const sampled = count.sample
    ? `, a sample (${describeSample(count.sample)}) of ${atLeast}${count.objects} objects`
    : '';
  const lines = [
    `dry run: nothing started`,
    `objects   s3://${estimate.bucket}/${estimate.prefix}, model ${estimate.model}`,
    `images    ${images}${sampled}${count.complete ? '' : ` (listing stopped at ${count.objects} objects: the figures below are lower bounds)`}`,
  ];
  for (const t of estimate.targets) {
    const d = t.dollars;
    lines.push(
      '',
      `${t.target}${t.instanceType ? ` (${t.instanceType})` : ''}: ${money(d.total)} all in, ${money(t.perThousand, 4)} per 1,000 images`,
      `  compute ${money(d.compute)}, DynamoDB ${money(d.dynamodb)}, S3 ${money(d.s3)}, SQS ${money(d.sqs)}, logs ${money(d.logs)}`,
      `  time    ${timeLine(t.configured, t.target, 'as configured')}`,
      `          ${t.defaultQuotas ? timeLine(t.defaultQuotas, t.target, "at the account's default quotas") : "at the account's default quotas: none (the GPU vCPU quota allows no instance)"}`,
    );
  }
  lines.push('', `auto      ${estimate.auto.target}: ${estimate.auto.reason}`);
  const notes = [...new Set(estimate.targets.flatMap((t) => t.estimates))];
  if (notes.length > 0) lines.push(`estimated ${notes.join('; ')}`);
  return lines.join('\n');
}

function timeLine(t: NonNullable<TargetEstimate['defaultQuotas']>, target: string, where: string): string {
  const workers = target === 'lambda' ? `${t.workers} executions` : `${t.workers} instances`;
  return `${duration(t.seconds)} ${where} (${workers}, ${Math.round(t.imagesPerSecond)} images/s, bound by ${t.boundBy})`;
}

function money(dollars: number, digits?: number): string {
  return `$${dollars.toFixed(digits ?? (dollars < 10 ? 3 : 2))}`;
}

export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
