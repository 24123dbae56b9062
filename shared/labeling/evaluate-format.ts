import { CODE } from '../error-codes.ts';
import { type Evaluation, NONE } from './evaluate.ts';

export const EVALUATE_FORMATS = ['table', 'json', 'markdown'] as const;
export type EvaluateFormat = (typeof EVALUATE_FORMATS)[number];

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)} %`);
const num = (x: number | null, digits = 3) => (x === null ? '-' : x.toFixed(digits));

/** An evaluation as `labeler evaluate` prints it: aligned text, one JSON object, or Markdown. */
export function formatEvaluation(e: Evaluation, format: EvaluateFormat): string {
  if (format === 'json') return `${JSON.stringify(e, null, 2)}\n`;
  const md = format === 'markdown';
  const out: string[] = [];
  const table = (header: readonly string[], rows: ReadonlyArray<readonly string[]>, right = true) => {
    out.push(...(md ? markdownTable(header, rows) : textTable(header, rows, right)), '');
  };
  const heading = (text: string) => out.push(md ? `### ${text}` : `${text}:`, '');

  out.push(...summary(e).map((line) => (md ? `- ${line}` : line)), '');

  heading('Per class');
  table(
    ['class', 'support', 'predicted', 'precision', 'recall', 'F1'],
    e.classes.map((c) => [
      c.inModel ? c.label : `${c.label} (not in model)`,
      String(c.support),
      String(c.predicted),
      num(c.precision),
      num(c.recall),
      num(c.f1),
    ]),
  );

  heading(`Confusion matrix (rows: truth; columns: top-1 label; ${NONE}: no result or failed)`);
  const columns = e.confusion.columns;
  if (md) {
    table(
      ['truth \\ top-1', ...columns],
      e.confusion.rows.map((label, r) => [label, ...(e.confusion.matrix[r] ?? []).map(String)]),
    );
  } else {
    // Columns by number, so a wide class list stays readable in a terminal.
    table(
      ['truth \\ top-1', ...columns.map((c, i) => (c === NONE ? 'none' : String(i)))],
      e.confusion.rows.map((label, r) => [`${r} ${label}`, ...(e.confusion.matrix[r] ?? []).map(String)]),
    );
  }

  heading(`Calibration (top-1 score bins; expected calibration error ${num(e.calibration.ece)})`);
  table(
    ['score', 'images', 'mean score', 'accuracy'],
    e.calibration.bins.map((b) => [
      `${b.from.toFixed(2)}-${b.to.toFixed(2)}`,
      String(b.images),
      num(b.meanScore),
      pct(b.accuracy),
    ]),
  );

  heading('Thresholds (images whose top-1 score is at least the minimum)');
  table(
    ['min score', 'images', 'share', 'accuracy'],
    e.thresholds.map((t) => [t.minScore.toFixed(2), String(t.images), pct(t.share), pct(t.accuracy)]),
  );
  return `${out.join('\n').trimEnd()}\n`;
}

/** The lines before the tables: what was evaluated, accuracy, and what was left out or unknown. */
export function summary(e: Evaluation): string[] {
  const lines = [
    `truth: ${e.truth.source} (${e.truth.images} images)`,
    `evaluated ${e.images} images: ${e.ok} ok, ${e.failed} failed, ${e.withoutResult} without a result`,
    `top-1 accuracy: ${pct(e.top1.accuracy)} (${e.top1.correct}/${e.images})`,
    `top-${e.topK.k} accuracy: ${pct(e.topK.accuracy)} (${e.topK.correct}/${e.images})`,
    `macro precision ${num(e.macro.precision)}, recall ${num(e.macro.recall)}, F1 ${num(e.macro.f1)} (over ${e.classes.filter((c) => c.support > 0).length} classes with images)`,
    `expected calibration error: ${num(e.calibration.ece)}`,
  ];
  if (e.minAccuracy) {
    const m = e.minAccuracy;
    lines.push(
      m.minScore === null
        ? `--min-accuracy ${pct(m.target)}: no minimum score reaches it`
        : `--min-accuracy ${pct(m.target)}: minimum score ${m.minScore.toFixed(6)} keeps ${m.images} of ${e.images} images (${pct(m.share)}) at ${pct(m.accuracy)} accuracy`,
    );
  }
  if (e.unknownLabels.length > 0) {
    const n = e.unknownLabels.reduce((sum, u) => sum + u.images, 0);
    lines.push(
      `${CODE.truth.unknownLabel}: ${n} image${n === 1 ? ' has a truth label' : 's have truth labels'} the model does not have, counted as misses: ${e.unknownLabels.map((u) => `${JSON.stringify(u.label)} (${u.images})`).join(', ')}`,
    );
  }
  if (e.withoutTruth > 0) lines.push(`${e.withoutTruth} selected results had no truth label (not evaluated)`);
  if (e.truthOutsideSelection > 0)
    lines.push(`${e.truthOutsideSelection} truth labels matched no selected image (not evaluated)`);
  return lines;
}

export function textTable(
  header: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  right: boolean,
): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === 0 || !right ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

export function markdownTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const cell = (c: string) => c.replaceAll('|', '\\|');
  const line = (cells: readonly string[]) => `| ${cells.map(cell).join(' | ')} |`;
  return [
    line(header),
    `|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map(line),
  ];
}
