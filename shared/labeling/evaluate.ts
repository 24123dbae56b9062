import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import type { ImageRef, TruthSet } from './ground-truth.ts';
import type { ImageResult } from './results.ts';

/**
 * How good the labels are against ground truth (issue 23, item 2): accuracy, per-class
 * precision/recall/F1, the confusion matrix, calibration and the score-threshold table.
 * Pure: the caller feeds results (`add`) and images the selection has no result for
 * (`addMissing`); `report` computes every number from what was fed.
 */

/** The confusion matrix's column for an image without a result or with a failed one. */
export const NONE = '(none)';

/** One result as evaluated: an image, ok with its labels best first, or failed. */
export interface EvaluatedResult {
  readonly image: ImageRef;
  readonly status: 'ok' | 'failed';
  readonly labels: ReadonlyArray<{ readonly label: string; readonly score: number }>;
}

export interface ClassMetrics {
  readonly label: string;
  /** Whether the model has this class; a truth label it lacks is reported, never dropped. */
  readonly inModel: boolean;
  /** Images whose truth is this class. */
  readonly support: number;
  /** Images the model labeled (top-1) as this class. */
  readonly predicted: number;
  readonly correct: number;
  /** correct / predicted; null when the class was never predicted. */
  readonly precision: number | null;
  /** correct / support; null when no image is of this class. */
  readonly recall: number | null;
  /** 2PR / (P + R); null when either is; 0 when both are 0. */
  readonly f1: number | null;
}

export interface CalibrationBin {
  /** Top-1 scores in [from, to) (the last bin includes 1). */
  readonly from: number;
  readonly to: number;
  readonly images: number;
  readonly meanScore: number | null;
  readonly accuracy: number | null;
}

export interface ThresholdRow {
  readonly minScore: number;
  /** Images whose top-1 score is at or above minScore. */
  readonly images: number;
  /** images / every evaluated image (failed and missing ones included). */
  readonly share: number;
  /** Top-1 accuracy of those images; null when none is kept. */
  readonly accuracy: number | null;
}

export interface MinAccuracy {
  readonly target: number;
  /** The lowest minimum score whose kept images reach the target; null when none does. */
  readonly minScore: number | null;
  readonly images: number;
  readonly share: number;
  readonly accuracy: number | null;
}

export interface Evaluation {
  readonly truth: { readonly source: string; readonly images: number };
  /** Images of the selection that have a truth label: every number below is over these. */
  readonly images: number;
  readonly ok: number;
  readonly failed: number;
  readonly withoutResult: number;
  /** Results of the selection no truth entry matched (not evaluated). */
  readonly withoutTruth: number;
  /** Truth entries no image of the selection matched. */
  readonly truthOutsideSelection: number;
  /** truth/unknown-label: truth labels the model does not have, and how many images carry each. */
  readonly unknownLabels: ReadonlyArray<{ readonly label: string; readonly images: number }>;
  readonly top1: { readonly correct: number; readonly accuracy: number | null };
  readonly topK: { readonly k: number; readonly correct: number; readonly accuracy: number | null };
  readonly classes: readonly ClassMetrics[];
  /** Means over the classes with support (a precision never defined counts 0, as scikit-learn's zero_division=0). */
  readonly macro: {
    readonly precision: number | null;
    readonly recall: number | null;
    readonly f1: number | null;
  };
  readonly confusion: {
    /** Truth labels: the model's classes, then truth labels it lacks. */
    readonly rows: readonly string[];
    /** Top-1 labels: the model's classes, labels of results outside them, then NONE. */
    readonly columns: readonly string[];
    /** matrix[row][column] images; it sums to `images`. */
    readonly matrix: readonly (readonly number[])[];
    /** With `cellImages`: the images behind each cell. */
    readonly images?: readonly (readonly (readonly ImageRef[])[])[];
  };
  readonly calibration: { readonly bins: readonly CalibrationBin[]; readonly ece: number | null };
  readonly thresholds: readonly ThresholdRow[];
  readonly minAccuracy?: MinAccuracy;
}

export interface ReportOptions {
  /** Top-k accuracy's k. @default 5 */
  readonly topK?: number;
  /** Calibration bins of equal width. @default 10 */
  readonly bins?: number;
  /** The threshold table's minimum scores. @default 0, 0.1, ..., 0.9, 0.95, 0.99 */
  readonly thresholds?: readonly number[];
  readonly minAccuracy?: number;
  /** Keep the images behind each confusion cell (the results page opens them). */
  readonly cellImages?: boolean;
}

export const DEFAULT_THRESHOLDS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99] as const;

interface Scored {
  readonly image: ImageRef;
  readonly truth: string;
  /** Top-1 label, or NONE. */
  readonly predicted: string;
  readonly score: number | null;
  readonly labels: readonly string[];
  readonly outcome: 'ok' | 'failed' | 'missing';
}

const ratio = (n: number, d: number): number | null => (d === 0 ? null : n / d);

export class Evaluator {
  readonly #classes: readonly string[];
  readonly #truth: TruthSet;
  readonly #scored: Scored[] = [];
  #withoutTruth = 0;

  constructor(classes: readonly string[], truth: TruthSet) {
    this.#classes = classes;
    this.#truth = truth;
  }

  add(result: EvaluatedResult): void {
    const truth = this.#truth.lookup(result.image);
    if (!truth) {
      this.#withoutTruth++;
      return;
    }
    const top = result.status === 'ok' ? result.labels[0] : undefined;
    this.#scored.push({
      image: result.image,
      truth: truth.label,
      predicted: top?.label ?? NONE,
      score: top?.score ?? null,
      labels: result.status === 'ok' ? result.labels.map((l) => l.label) : [],
      outcome: top ? 'ok' : 'failed',
    });
  }

  /** An image the selection names that has no result (not labeled yet, or its result is gone). */
  addMissing(image: ImageRef): void {
    const truth = this.#truth.lookup(image);
    if (!truth) return;
    this.#scored.push({
      image,
      truth: truth.label,
      predicted: NONE,
      score: null,
      labels: [],
      outcome: 'missing',
    });
  }

  report(options: ReportOptions = {}): Evaluation {
    const k = options.topK ?? 5;
    const scored = this.#scored;
    const known = new Set(this.#classes);
    const extraTruth = unique(scored.map((s) => s.truth).filter((l) => !known.has(l)));
    const extraPredicted = unique(
      scored.map((s) => s.predicted).filter((l) => l !== NONE && !known.has(l) && !extraTruth.includes(l)),
    );
    const rows = [...this.#classes, ...extraTruth];
    const columns = [
      ...this.#classes,
      ...extraTruth.filter((l) => scored.some((s) => s.predicted === l)),
      ...extraPredicted,
      NONE,
    ];
    const rowAt = new Map(rows.map((l, i) => [l, i]));
    const columnAt = new Map(columns.map((l, i) => [l, i]));
    const matrix = rows.map(() => columns.map(() => 0));
    const cells = options.cellImages ? rows.map(() => columns.map((): ImageRef[] => [])) : undefined;
    for (const s of scored) {
      const r = rowAt.get(s.truth) as number;
      const c = columnAt.get(s.predicted) as number;
      const row = matrix[r] as number[];
      row[c] = (row[c] ?? 0) + 1;
      cells?.[r]?.[c]?.push(s.image);
    }

    const correct = scored.filter((s) => s.predicted === s.truth).length;
    const topKCorrect = scored.filter((s) => s.labels.slice(0, k).includes(s.truth)).length;
    const labels = unique([...rows, ...extraPredicted]);
    const classes: ClassMetrics[] = labels.map((label) => {
      const support = scored.filter((s) => s.truth === label).length;
      const predicted = scored.filter((s) => s.predicted === label).length;
      const hits = scored.filter((s) => s.truth === label && s.predicted === label).length;
      const precision = ratio(hits, predicted);
      const recall = ratio(hits, support);
      const f1 =
        precision === null || recall === null
          ? null
          : precision + recall === 0
            ? 0
            : (2 * precision * recall) / (precision + recall);
      return { label, inModel: known.has(label), support, predicted, correct: hits, precision, recall, f1 };
    });
    const supported = classes.filter((c) => c.support > 0);
    const mean = (pick: (c: ClassMetrics) => number | null) =>
      supported.length === 0
        ? null
        : supported.reduce((sum, c) => sum + (pick(c) ?? 0), 0) / supported.length;

    const withScore = scored.filter((s): s is Scored & { score: number } => s.score !== null);
    const binCount = options.bins ?? 10;
    const bins: CalibrationBin[] = [];
    let ece = 0;
    for (let b = 0; b < binCount; b++) {
      const from = b / binCount;
      const to = (b + 1) / binCount;
      const inBin = withScore.filter((s) => Math.min(Math.floor(s.score * binCount), binCount - 1) === b);
      const meanScore = ratio(
        inBin.reduce((sum, s) => sum + s.score, 0),
        inBin.length,
      );
      const accuracy = ratio(inBin.filter((s) => s.predicted === s.truth).length, inBin.length);
      if (meanScore !== null && accuracy !== null)
        ece += (inBin.length / withScore.length) * Math.abs(accuracy - meanScore);
      bins.push({ from, to, images: inBin.length, meanScore, accuracy });
    }

    const kept = (minScore: number) => {
      const at = withScore.filter((s) => s.score >= minScore);
      return {
        minScore,
        images: at.length,
        share: ratio(at.length, scored.length) ?? 0,
        accuracy: ratio(at.filter((s) => s.predicted === s.truth).length, at.length),
      };
    };
    const thresholds = (options.thresholds ?? DEFAULT_THRESHOLDS).map(kept);

    return {
      truth: { source: this.#truth.source, images: this.#truth.size },
      images: scored.length,
      ok: scored.filter((s) => s.outcome === 'ok').length,
      failed: scored.filter((s) => s.outcome === 'failed').length,
      withoutResult: scored.filter((s) => s.outcome === 'missing').length,
      withoutTruth: this.#withoutTruth,
      truthOutsideSelection: this.#truth.unmatched(),
      unknownLabels: extraTruth.map((label) => ({
        label,
        images: scored.filter((s) => s.truth === label).length,
      })),
      top1: { correct, accuracy: ratio(correct, scored.length) },
      topK: { k, correct: topKCorrect, accuracy: ratio(topKCorrect, scored.length) },
      classes,
      macro: { precision: mean((c) => c.precision), recall: mean((c) => c.recall), f1: mean((c) => c.f1) },
      confusion: { rows, columns, matrix, ...(cells ? { images: cells } : {}) },
      calibration: { bins, ece: withScore.length === 0 ? null : ece },
      thresholds,
      ...(options.minAccuracy === undefined
        ? {}
        : { minAccuracy: lowestThreshold(withScore, scored.length, options.minAccuracy) }),
    };
  }
}

/**
 * The lowest minimum score whose kept images (top-1 score at or above it) reach `target`
 * accuracy: every distinct top-1 score is a candidate, so the answer is exact.
 */
function lowestThreshold(
  withScore: ReadonlyArray<Scored & { score: number }>,
  total: number,
  target: number,
): MinAccuracy {
  const byScore = [...withScore].sort((a, b) => b.score - a.score);
  let best: MinAccuracy = { target, minScore: null, images: 0, share: 0, accuracy: null };
  let correct = 0;
  for (let i = 0; i < byScore.length; i++) {
    const s = byScore[i] as Scored & { score: number };
    if (s.predicted === s.truth) correct++;
    // Only where the next image scores lower: a threshold keeps every image of its score.
    if (i + 1 < byScore.length && (byScore[i + 1] as { score: number }).score === s.score) continue;
    const accuracy = correct / (i + 1);
    if (accuracy >= target)
      best = { target, minScore: s.score, images: i + 1, share: (i + 1) / total, accuracy };
  }
  return best;
}

function unique(labels: readonly string[]): string[] {
  return [...new Set(labels)];
}

/**
 * One line of `labeler label --format jsonl` ({"file",...}) or of `export`/`query`
 * ({"bucket","key",...}) as a result to evaluate.
 */
export function resultFromLine(line: string, where: string): EvaluatedResult {
  let row: Record<string, unknown>;
  try {
    row = JSON.parse(line) as Record<string, unknown>;
  } catch (cause) {
    throw new LabelerError(CODE.results.unreadable, `${where} is not JSON`, { cause });
  }
  const key = typeof row.key === 'string' ? row.key : typeof row.file === 'string' ? row.file : undefined;
  if (key === undefined || (row.status !== 'ok' && row.status !== 'failed')) {
    throw new LabelerError(
      CODE.results.unreadable,
      `${where} is not a result line of "labeler label" or "labeler export" (no "file"/"key" or "status")`,
    );
  }
  const labels = Array.isArray(row.labels)
    ? (row.labels as Array<{ label?: unknown; score?: unknown }>).filter(
        (l): l is { label: string; score: number } =>
          typeof l.label === 'string' && typeof l.score === 'number',
      )
    : [];
  return {
    image: { ...(typeof row.bucket === 'string' ? { bucket: row.bucket } : {}), key },
    status: row.status,
    labels,
  };
}

/** A stored result as one to evaluate. */
export function resultFromStore(r: ImageResult): EvaluatedResult {
  return { image: { bucket: r.bucket, key: r.key }, status: r.status, labels: r.labels };
}
