import type { AccuracyCounter } from '../shared/labeling/accuracy.ts';

/** Labels as the JSON Lines contract prints them: one shape for `label`, `local run` and `query`. */
export { printedLabels } from '../shared/labeling/results.ts';

export function reportAccuracy(accuracy: AccuracyCounter | undefined): void {
  if (!accuracy) return;
  const r = accuracy.report();
  process.stderr.write(`top-1 accuracy: ${(r.accuracy * 100).toFixed(1)} % (${r.correct}/${r.compared})\n`);
}
