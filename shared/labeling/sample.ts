/**
 * `jobs start --sample <n|percent>` (issue 24, item 2): a deterministic sample of a prefix,
 * decidable one object at a time, so the planner's self-continuing steps can select from
 * each page without seeing the whole listing (docs/decisions/0036-deterministic-samples.md).
 *
 * Every key has a rank: 16 hex digits of SHA-256(seed, key), then the key itself (the key
 * breaks the one-in-2^64 tie, so ranks are distinct). A sample is every key whose rank is
 * at most a bound stored on the job:
 * - `percent`: the bound is percent/100 of the hash space: no listing before planning;
 *   about `percent` % of the objects, the same ones for the same seed.
 * - `count` n: the bound is the n-th smallest rank of the prefix, found by one counting pass
 *   that keeps the n smallest ranks (a bounded heap of n keys): exactly n objects while the
 *   prefix does not change, the same n on a rerun.
 * The hash spreads the sample over the whole listing; samples nest (the 50 of a seed are
 * among its 100, and a 5 % sample inside its 10 %).
 */

import { createHash } from 'node:crypto';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';

/** What the user asked for. */
export type SampleSpec =
  | { readonly count: number; readonly seed: number }
  | { readonly percent: number; readonly seed: number };

/** A resolved sample, as the job record carries it: a key is in when `rankOf(seed, key) <= bound`. */
export type JobSample = SampleSpec & { readonly bound: string };

export const DEFAULT_SAMPLE_SEED = 0;
const MAX_SEED = 2 ** 31 - 1;
const HASH_HEX = 16;

/** The key's place in the seed's order: fixed-width hash, then the key. */
export function rankOf(seed: number, key: string): string {
  return createHash('sha256').update(`${seed}\n${key}`).digest('hex').slice(0, HASH_HEX) + key;
}

export function inSample(sample: JobSample, key: string): boolean {
  return rankOf(sample.seed, key) <= sample.bound;
}

/** `--sample 50` or `--sample 5%` (with `--seed`); typed errors for anything else. */
export function parseSample(text: string, seedText?: string): SampleSpec {
  const seed = seedText === undefined ? DEFAULT_SAMPLE_SEED : Number(seedText);
  if (seedText !== undefined && !(/^\d+$/.test(seedText.trim()) && seed <= MAX_SEED)) {
    throw new LabelerError(
      CODE.job.invalidSample,
      `--seed must be a whole number from 0 to ${MAX_SEED}, got "${seedText}"`,
    );
  }
  const trimmed = text.trim();
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(trimmed);
  if (percent) {
    const value = Number(percent[1]);
    if (value > 0 && value <= 100) return { percent: value, seed };
  } else if (/^\d+$/.test(trimmed)) {
    const count = Number(trimmed);
    if (count >= 1 && Number.isSafeInteger(count)) return { count, seed };
  }
  throw new LabelerError(
    CODE.job.invalidSample,
    `--sample takes a number of objects (e.g. 50) or a percentage above 0 up to 100 (e.g. 5%), got "${text}"`,
  );
}

/** "50 objects, seed 0" / "5% of the objects, seed 0": what `jobs status` shows. */
export function describeSample(sample: SampleSpec): string {
  return 'count' in sample
    ? `${sample.count} objects, seed ${sample.seed}`
    : `${sample.percent}% of the objects, seed ${sample.seed}`;
}

/** `--sample`'s text back: "50" or "5%". */
export function sampleSize(sample: SampleSpec): string {
  return 'count' in sample ? String(sample.count) : `${sample.percent}%`;
}

/**
 * The bound for `spec`. A percentage needs no listing; a count lists the prefix once,
 * keeping the `count` smallest ranks (memory: `count` keys), and its bound is the largest
 * of those (every rank when the prefix holds fewer objects).
 */
export async function resolveSample(
  spec: SampleSpec,
  listKeys: () => AsyncIterable<readonly string[]>,
): Promise<JobSample> {
  if (!('count' in spec)) return { ...spec, bound: percentBound(spec.percent) };
  const smallest = new MaxHeap();
  for await (const page of listKeys()) {
    for (const key of page) {
      // Folder markers are never planned, so they are never sampled.
      if (key.endsWith('/')) continue;
      const rank = rankOf(spec.seed, key);
      if (smallest.size < spec.count) smallest.push(rank);
      else if (rank < (smallest.peek() as string)) smallest.replaceTop(rank);
    }
  }
  // An empty prefix: a bound below every rank (the start refuses empty prefixes before this).
  return { ...spec, bound: smallest.peek() ?? '' };
}

function percentBound(percent: number): string {
  // Above every hex digit: a 100 % sample is every key.
  if (percent >= 100) return 'g';
  // Micro-percent steps keep the arithmetic exact in BigInt.
  const bound = (BigInt(Math.round(percent * 1e6)) * 2n ** 64n) / 100_000_000n;
  // Strictly below the bound: a rank equal to it is longer (hash + key), so it is greater.
  return bound.toString(16).padStart(HASH_HEX, '0');
}

/** A max-heap of strings: the largest of the n smallest ranks on top. */
class MaxHeap {
  readonly #items: string[] = [];
  get size(): number {
    return this.#items.length;
  }
  peek(): string | undefined {
    return this.#items[0];
  }
  push(value: string): void {
    const a = this.#items;
    a.push(value);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((a[parent] as string) >= value) break;
      a[i] = a[parent] as string;
      i = parent;
    }
    a[i] = value;
  }
  replaceTop(value: string): void {
    const a = this.#items;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= a.length) break;
      const right = left + 1;
      const child = right < a.length && (a[right] as string) > (a[left] as string) ? right : left;
      if ((a[child] as string) <= value) break;
      a[i] = a[child] as string;
      i = child;
    }
    a[i] = value;
  }
}
