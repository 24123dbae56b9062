import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import type { EvaluatedResult } from './evaluate.ts';
import type { ImageRef, TruthSet } from './ground-truth.ts';

/**
 * Two models' labels of the same images side by side (issue 24, item 3): top-1 agreement,
 * the A→B transition matrix, how scores moved, what fell under a threshold, the images that
 * changed most and, with ground truth, which model is right where. Pure: the caller feeds
 * each image's two results (`add`); `report` computes every number from what was fed
 * (docs/decisions/0034-comparing-two-models.md).
 */

/** One side of a comparison: how the user named the model, and its classes when known. */
export interface ComparedModel {
  /** `id@version` (a model folder's manifest says which), as results name it. */
  readonly name: string;
  /** The model's classes in its labels file's order (the matrix follows it); absent for `id@version`. */
  readonly classes?: readonly string[];
}

export interface Top1 {
  readonly label: string;
  readonly score: number;
}

/** One image both models labeled, as the report lists it. */
export interface ChangedImage {
  readonly image: ImageRef;
  readonly a: Top1;
  readonly b: Top1;
  /** B's score for A's top-1 label; null when B's printed labels (its top-k) do not include it. */
  readonly bScoreOfA: number | null;
  /**
   * How far B moved from A's answer: A's top-1 score minus B's score for that label (0 when
   * outside B's top-k). Positive: B believes A's label less. "Changed most" ranks by its size.
   */
  readonly change: number;
}

export interface DeltaBin {
  /** Deltas in [from, to) (the last bin includes its `to`). */
  readonly from: number;
  readonly to: number;
  readonly images: number;
}

export interface DeltaSummary {
  readonly images: number;
  readonly mean: number | null;
  readonly median: number | null;
  readonly min: number | null;
  readonly max: number | null;
  readonly bins: readonly DeltaBin[];
}

export interface ClassAccuracy {
  readonly label: string;
  /** Compared images whose truth is this class (classes in the models' order, then others alphabetically). */
  readonly support: number;
  readonly aCorrect: number;
  readonly bCorrect: number;
  readonly aAccuracy: number | null;
  readonly bAccuracy: number | null;
  /** bAccuracy - aAccuracy; null without support. */
  readonly difference: number | null;
}

export interface TruthComparison {
  readonly source: string;
  /** Compared images with a truth label: every number here is over these. */
  readonly images: number;
  /** Compared images no truth entry matched. */
  readonly withoutTruth: number;
  readonly a: { readonly correct: number; readonly accuracy: number | null };
  readonly b: { readonly correct: number; readonly accuracy: number | null };
  /** b.accuracy - a.accuracy. */
  readonly difference: number | null;
  readonly classes: readonly ClassAccuracy[];
  /** B right, A wrong. */
  readonly fixed: readonly TruthChange[];
  /** A right, B wrong. */
  readonly broken: readonly TruthChange[];
  readonly bothWrong: number;
}

export interface TruthChange {
  readonly image: ImageRef;
  readonly truth: string;
  readonly a: Top1;
  readonly b: Top1;
}

export interface Comparison {
  readonly models: { readonly a: string; readonly b: string };
  readonly images: {
    /** Images with a result (ok or failed) from A, from B, and from both. */
    readonly a: number;
    readonly b: number;
    readonly both: number;
    readonly onlyA: number;
    readonly onlyB: number;
    /** Of `both`: images where A failed and B did not, the reverse, and both failed (not compared). */
    readonly aFailed: number;
    readonly bFailed: number;
    readonly bothFailed: number;
    /** Images both models labeled ok: every number below is over these. */
    readonly compared: number;
  };
  readonly agreement: { readonly agree: number; readonly rate: number | null };
  readonly transitions: {
    /** Both axes: A's classes, then B's, then other labels seen, alphabetically. */
    readonly labels: readonly string[];
    /** matrix[A's top-1][B's top-1] images; it sums to `compared`, its diagonal to `agree`. */
    readonly matrix: readonly (readonly number[])[];
  };
  readonly scoreChanges: {
    /** Per image: B's top-1 score minus A's top-1 score (whatever the labels). */
    readonly top1: DeltaSummary;
    /** Per image: B's score for A's top-1 label minus A's top-1 score (0 for B when outside its top-k). */
    readonly aLabel: DeltaSummary & { readonly outsideBTopK: number };
  };
  readonly threshold: {
    readonly value: number;
    /** A's top-1 score >= value, B's < value. */
    readonly newlyUnder: readonly ChangedImage[];
    /** A's top-1 score < value, B's >= value. */
    readonly newlyOver: number;
  };
  /** The `top` images with the largest |change|, largest first. */
  readonly changed: readonly ChangedImage[];
  readonly truth?: TruthComparison;
}

export interface CompareOptions {
  /** @default 0.5 */
  readonly threshold?: number;
  /** How many images `changed` lists. @default 20 */
  readonly top?: number;
  /** Bins of equal width over [-1, 1] for the score-change histograms. @default 20 */
  readonly bins?: number;
}

interface Pair {
  readonly image: ImageRef;
  readonly a: Top1;
  readonly b: Top1;
  readonly bScoreOfA: number | null;
  readonly truth?: string;
}

const ratio = (n: number, d: number): number | null => (d === 0 ? null : n / d);

/** How a comparison keys an image: its bucket (when an S3 object) and key or file path. */
export function imageKey(image: ImageRef): string {
  return image.bucket === undefined ? `file:${image.key}` : `s3://${image.bucket}/${image.key}`;
}

export class Comparer {
  readonly #a: ComparedModel;
  readonly #b: ComparedModel;
  readonly #truth: TruthSet | undefined;
  readonly #pairs: Pair[] = [];
  readonly #counts = { a: 0, b: 0, both: 0, aFailed: 0, bFailed: 0, bothFailed: 0 };
  #withoutTruth = 0;

  constructor(a: ComparedModel, b: ComparedModel, truth?: TruthSet) {
    this.#a = a;
    this.#b = b;
    this.#truth = truth;
  }

  /** One image's results: A's, B's, either absent when that model has none for it. */
  add(a: EvaluatedResult | undefined, b: EvaluatedResult | undefined): void {
    if (a) this.#counts.a++;
    if (b) this.#counts.b++;
    if (!a || !b) return;
    this.#counts.both++;
    const topA = a.status === 'ok' ? a.labels[0] : undefined;
    const topB = b.status === 'ok' ? b.labels[0] : undefined;
    if (!topA || !topB) {
      if (!topA && !topB) this.#counts.bothFailed++;
      else if (!topA) this.#counts.aFailed++;
      else this.#counts.bFailed++;
      return;
    }
    const truth = this.#truth?.lookup(a.image);
    if (this.#truth && !truth) this.#withoutTruth++;
    this.#pairs.push({
      image: a.image,
      a: { label: topA.label, score: topA.score },
      b: { label: topB.label, score: topB.score },
      bScoreOfA: b.labels.find((l) => l.label === topA.label)?.score ?? null,
      ...(truth ? { truth: truth.label } : {}),
    });
  }

  report(options: CompareOptions = {}): Comparison {
    const threshold = options.threshold ?? 0.5;
    const top = options.top ?? 20;
    const binCount = options.bins ?? 20;
    // Ranked lists come out the same whatever order the images were fed in.
    const pairs = [...this.#pairs].sort((x, y) => cmp(imageKey(x.image), imageKey(y.image)));
    const agree = pairs.filter((p) => p.a.label === p.b.label).length;

    const labels = axisLabels(this.#a, this.#b, pairs);
    const at = new Map(labels.map((l, i) => [l, i]));
    const matrix = labels.map(() => labels.map(() => 0));
    for (const p of pairs) {
      const row = matrix[at.get(p.a.label) as number] as number[];
      const c = at.get(p.b.label) as number;
      row[c] = (row[c] ?? 0) + 1;
    }

    const changes = pairs.map(changedImage);
    const newlyUnder = changes.filter((c) => c.a.score >= threshold && c.b.score < threshold);
    const newlyOver = changes.filter((c) => c.a.score < threshold && c.b.score >= threshold).length;
    const changed = [...changes]
      .sort((x, y) => Math.abs(y.change) - Math.abs(x.change) || cmp(imageKey(x.image), imageKey(y.image)))
      .slice(0, top);

    const compared = pairs.length;
    const c = this.#counts;
    return {
      models: { a: this.#a.name, b: this.#b.name },
      images: {
        a: c.a,
        b: c.b,
        both: c.both,
        onlyA: c.a - c.both,
        onlyB: c.b - c.both,
        aFailed: c.aFailed,
        bFailed: c.bFailed,
        bothFailed: c.bothFailed,
        compared,
      },
      agreement: { agree, rate: ratio(agree, compared) },
      transitions: { labels, matrix },
      scoreChanges: {
        top1: summarize(
          pairs.map((p) => tidy(p.b.score - p.a.score)),
          binCount,
        ),
        aLabel: {
          ...summarize(
            changes.map((ch) => -ch.change),
            binCount,
          ),
          outsideBTopK: changes.filter((ch) => ch.bScoreOfA === null).length,
        },
      },
      threshold: { value: threshold, newlyUnder, newlyOver },
      changed,
      ...(this.#truth
        ? { truth: truthComparison(this.#truth.source, pairs, this.#withoutTruth, this.#a, this.#b) }
        : {}),
    };
  }
}

/**
 * Pairs two result sets by image (bucket and key, or file path) and compares them; an image
 * twice in one set is refused rather than one of its results silently kept.
 */
export function compareResults(
  a: { readonly model: ComparedModel; readonly results: Iterable<EvaluatedResult> },
  b: { readonly model: ComparedModel; readonly results: Iterable<EvaluatedResult> },
  options: CompareOptions & { readonly truth?: TruthSet } = {},
): Comparison {
  const byImage = (side: typeof a) => {
    const map = new Map<string, EvaluatedResult>();
    for (const r of side.results) {
      const key = imageKey(r.image);
      if (map.has(key))
        throw new LabelerError(
          CODE.compare.duplicateImage,
          `${side.model.name} has two results for ${printedImage(r.image)}; give one result per image`,
        );
      map.set(key, r);
    }
    return map;
  };
  const resultsA = byImage(a);
  const resultsB = byImage(b);
  const comparer = new Comparer(a.model, b.model, options.truth);
  for (const [key, r] of resultsA) comparer.add(r, resultsB.get(key));
  for (const [key, r] of resultsB) if (!resultsA.has(key)) comparer.add(undefined, r);
  return comparer.report(options);
}

/**
 * compare/no-overlap when no image has an ok result from both models: there is nothing to
 * compare, and a report of zeros would read as "they agree on nothing".
 */
export function assertOverlap(c: Comparison, where: string): void {
  if (c.images.compared > 0) return;
  const i = c.images;
  throw new LabelerError(
    CODE.compare.noOverlap,
    `no image ${where} has an ok result from both ${c.models.a} (${i.a} results) and ${c.models.b} (${i.b} results)` +
      (i.both > 0
        ? `; ${i.both} have results from both but one of them failed`
        : '; results pair up by bucket and key, or by file path exactly as "labeler label" printed it'),
  );
}

export function printedImage(image: ImageRef): string {
  return image.bucket === undefined ? image.key : `s3://${image.bucket}/${image.key}`;
}

function changedImage(p: Pair): ChangedImage {
  return {
    image: p.image,
    a: p.a,
    b: p.b,
    bScoreOfA: p.bScoreOfA,
    change: tidy(p.a.score - (p.bScoreOfA ?? 0)),
  };
}

function axisLabels(a: ComparedModel, b: ComparedModel, pairs: readonly Pair[]): string[] {
  const seen = new Set(pairs.flatMap((p) => [p.a.label, p.b.label]));
  const known = [...new Set([...(a.classes ?? []), ...(b.classes ?? [])])];
  const knownSet = new Set(known);
  return [...known.filter((l) => seen.has(l)), ...[...seen].filter((l) => !knownSet.has(l)).sort(cmp)];
}

function summarize(deltas: readonly number[], binCount: number): DeltaSummary {
  const sorted = [...deltas].sort((x, y) => x - y);
  const n = sorted.length;
  const width = 2 / binCount;
  const bins: DeltaBin[] = Array.from({ length: binCount }, (_, i) => ({
    from: tidy(-1 + i * width),
    to: tidy(-1 + (i + 1) * width),
    images: 0,
  }));
  const counts = bins.map(() => 0);
  for (const d of sorted) {
    // Rounded first: 0.3 / 0.1 is 2.9999999999999996, and -0.1 belongs to [-0.1, 0).
    const i = Math.min(Math.max(Math.floor(Math.round(((d + 1) / width) * 1e6) / 1e6), 0), binCount - 1);
    counts[i] = (counts[i] ?? 0) + 1;
  }
  const middle = n % 2 === 1 ? sorted[(n - 1) / 2] : ((sorted[n / 2 - 1] ?? 0) + (sorted[n / 2] ?? 0)) / 2;
  return {
    images: n,
    mean: n === 0 ? null : sorted.reduce((s, d) => s + d, 0) / n,
    median: n === 0 ? null : (middle as number),
    min: sorted[0] ?? null,
    max: sorted[n - 1] ?? null,
    bins: bins.map((bin, i) => ({ ...bin, images: counts[i] ?? 0 })),
  };
}

function truthComparison(
  source: string,
  pairs: readonly Pair[],
  withoutTruth: number,
  a: ComparedModel,
  b: ComparedModel,
): TruthComparison {
  const judged = pairs.filter((p): p is Pair & { truth: string } => p.truth !== undefined);
  const aCorrect = judged.filter((p) => p.a.label === p.truth).length;
  const bCorrect = judged.filter((p) => p.b.label === p.truth).length;
  const aAccuracy = ratio(aCorrect, judged.length);
  const bAccuracy = ratio(bCorrect, judged.length);
  const truths = new Set(judged.map((p) => p.truth));
  const known = [...new Set([...(a.classes ?? []), ...(b.classes ?? [])])];
  const order = [
    ...known.filter((l) => truths.has(l)),
    ...[...truths].filter((l) => !known.includes(l)).sort(cmp),
  ];
  const classes = order.map((label): ClassAccuracy => {
    const of = judged.filter((p) => p.truth === label);
    const ac = of.filter((p) => p.a.label === label).length;
    const bc = of.filter((p) => p.b.label === label).length;
    const aAcc = ratio(ac, of.length);
    const bAcc = ratio(bc, of.length);
    return {
      label,
      support: of.length,
      aCorrect: ac,
      bCorrect: bc,
      aAccuracy: aAcc,
      bAccuracy: bAcc,
      difference: aAcc === null || bAcc === null ? null : bAcc - aAcc,
    };
  });
  const change = (p: Pair & { truth: string }): TruthChange => ({
    image: p.image,
    truth: p.truth,
    a: p.a,
    b: p.b,
  });
  return {
    source,
    images: judged.length,
    withoutTruth,
    a: { correct: aCorrect, accuracy: aAccuracy },
    b: { correct: bCorrect, accuracy: bAccuracy },
    difference: aAccuracy === null || bAccuracy === null ? null : bAccuracy - aAccuracy,
    classes,
    fixed: judged.filter((p) => p.a.label !== p.truth && p.b.label === p.truth).map(change),
    broken: judged.filter((p) => p.a.label === p.truth && p.b.label !== p.truth).map(change),
    bothWrong: judged.filter((p) => p.a.label !== p.truth && p.b.label !== p.truth).length,
  };
}

/** Differences and bin edges without float noise (-0.1, not -0.09999999999999998). */
function tidy(x: number): number {
  return Math.round(x * 1e9) / 1e9;
}

function cmp(x: string, y: string): number {
  return x < y ? -1 : x > y ? 1 : 0;
}
