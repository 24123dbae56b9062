import { type ChangedImage, type Comparison, printedImage, type Top1, type TruthChange } from './compare.ts';
import { markdownTable, textTable } from './evaluate-format.ts';

export const COMPARE_FORMATS = ['table', 'json', 'markdown'] as const;
export type CompareFormat = (typeof COMPARE_FORMATS)[number];

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)} %`);
const num = (x: number | null, digits = 3) => (x === null ? '-' : x.toFixed(digits));
/** "+0.012", "-0.100"; a value that rounds to zero prints "+0.000", never "-0.000". */
const signed = (x: number | null, digits = 3) => {
  if (x === null) return '-';
  const v = Math.abs(x) < 0.5 * 10 ** -digits ? 0 : x;
  return `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`;
};
const images = (n: number) => `${n} image${n === 1 ? '' : 's'}`;
const points = (x: number | null) =>
  x === null ? '-' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} points`;
const top1 = (t: Top1) => `${t.label} ${t.score.toFixed(3)}`;

/**
 * A comparison as `labeler compare` prints it: aligned text, one JSON object (every list
 * whole), or Markdown. Text and Markdown list at most `listLimit` images per list.
 */
export function formatComparison(c: Comparison, format: CompareFormat, listLimit = 20): string {
  if (format === 'json') return `${JSON.stringify(c, null, 2)}\n`;
  const md = format === 'markdown';
  const out: string[] = [];
  const table = (header: readonly string[], rows: ReadonlyArray<readonly string[]>, right = true) => {
    out.push(...(md ? markdownTable(header, rows) : textTable(header, rows, right)), '');
  };
  const heading = (text: string) => out.push(md ? `### ${text}` : `${text}:`, '');
  const list = <T>(items: readonly T[], header: readonly string[], row: (item: T) => string[]) => {
    if (items.length === 0) {
      out.push('(none)', '');
      return;
    }
    table(header, items.slice(0, listLimit).map(row), false);
    if (items.length > listLimit)
      out.splice(
        out.length - 1,
        0,
        `... and ${items.length - listLimit} more (--format json lists them all)`,
      );
  };

  out.push(...comparisonSummary(c).map((line) => (md ? `- ${line}` : line)), '');

  heading(
    `Transitions (rows: top-1 of A ${c.models.a}; columns: top-1 of B ${c.models.b}; the diagonal agrees)`,
  );
  const labels = c.transitions.labels;
  const matrixRows = labels.map((label, r) => {
    const row = c.transitions.matrix[r] ?? [];
    const kept = row[r] ?? 0;
    const total = row.reduce((s, n) => s + n, 0);
    return [
      md ? label : `${r} ${label}`,
      ...row.map(String),
      String(total),
      pct(total === 0 ? null : kept / total),
    ];
  });
  table(['A \\ B', ...(md ? labels : labels.map((_, i) => String(i))), 'A total', 'kept'], matrixRows);

  heading('Score changes (images per bin; only bins with images)');
  const t = c.scoreChanges.top1;
  const s = c.scoreChanges.aLabel;
  table(
    ['change', 'B top-1 - A top-1', "B's score of A's label - A top-1"],
    t.bins
      .map((bin, i) => [
        `${signed(bin.from, 2)} to ${signed(bin.to, 2)}`,
        String(bin.images),
        String(s.bins[i]?.images ?? 0),
      ])
      .filter((row) => row[1] !== '0' || row[2] !== '0'),
  );

  heading(`Changed most (the ${c.changed.length} largest |A's top-1 score - B's score of that label|)`);
  list(c.changed, ['image', 'A', 'B', "B's score of A's label", 'minus A'], (ch: ChangedImage) => [
    printedImage(ch.image),
    top1(ch.a),
    top1(ch.b),
    ch.bScoreOfA === null ? 'not in top-k' : num(ch.bScoreOfA),
    signed(-ch.change),
  ]);

  heading(`Newly under ${c.threshold.value} (A's top-1 score at or above it, B's below)`);
  list(c.threshold.newlyUnder, ['image', 'A', 'B'], (ch: ChangedImage) => [
    printedImage(ch.image),
    top1(ch.a),
    top1(ch.b),
  ]);

  const truth = c.truth;
  if (truth) {
    heading(`Accuracy per class (truth: ${truth.source})`);
    table(
      ['class', 'support', 'A', 'B', 'B - A'],
      [
        ...truth.classes.map((k) => [
          k.label,
          String(k.support),
          pct(k.aAccuracy),
          pct(k.bAccuracy),
          points(k.difference),
        ]),
        [
          '(all)',
          String(truth.images),
          pct(truth.a.accuracy),
          pct(truth.b.accuracy),
          points(truth.difference),
        ],
      ],
    );
    const truthRow = (ch: TruthChange) => [printedImage(ch.image), ch.truth, top1(ch.a), top1(ch.b)];
    heading(`B right, A wrong (${truth.fixed.length})`);
    list(truth.fixed, ['image', 'truth', 'A', 'B'], truthRow);
    heading(`A right, B wrong (${truth.broken.length})`);
    list(truth.broken, ['image', 'truth', 'A', 'B'], truthRow);
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/** The lines before the tables: the models, what was compared, agreement and the headline numbers. */
export function comparisonSummary(c: Comparison): string[] {
  const i = c.images;
  const t = c.scoreChanges.top1;
  const s = c.scoreChanges.aLabel;
  const lines = [
    `A: ${c.models.a}`,
    `B: ${c.models.b}`,
    `compared ${i.compared} images both models labeled (results: A ${i.a}, B ${i.b}; only A ${i.onlyA}, only B ${i.onlyB}; failed: A ${i.aFailed}, B ${i.bFailed}, both ${i.bothFailed})`,
    `top-1 agreement: ${pct(c.agreement.rate)} (${c.agreement.agree}/${i.compared}); ${i.compared - c.agreement.agree} images changed label`,
    `top-1 score, B - A: mean ${signed(t.mean)}, median ${signed(t.median)}, min ${signed(t.min)}, max ${signed(t.max)}`,
    `B's score of A's top-1 label, minus A's: mean ${signed(s.mean)}, median ${signed(s.median)}, min ${signed(s.min)}, max ${signed(s.max)}` +
      (s.outsideBTopK > 0 ? ` (${images(s.outsideBTopK)}: not in B's top-k, counted as 0)` : ''),
    `threshold ${c.threshold.value}: ${images(c.threshold.newlyUnder.length)} fall${c.threshold.newlyUnder.length === 1 ? 's' : ''} under it, ${c.threshold.newlyOver} rise${c.threshold.newlyOver === 1 ? 's' : ''} to it`,
  ];
  const truth = c.truth;
  if (truth) {
    lines.push(
      `truth: ${truth.source}: ${truth.images} compared images have a truth label` +
        (truth.withoutTruth > 0 ? ` (${truth.withoutTruth} have none, not judged)` : ''),
      `top-1 accuracy: A ${pct(truth.a.accuracy)} (${truth.a.correct}/${truth.images}), B ${pct(truth.b.accuracy)} (${truth.b.correct}/${truth.images}), B - A ${points(truth.difference)}`,
      `B right where A was wrong: ${truth.fixed.length}; A right where B is wrong: ${truth.broken.length}; both wrong: ${truth.bothWrong}`,
    );
  }
  return lines;
}
