import type { AccuracyCounter } from '../shared/labeling/accuracy.ts';
import type { Label } from '../shared/model/classifier.ts';

/** Labels as the JSON Lines contract prints them: scores to six decimals. */
export function printedLabels(labels: readonly Label[]): Label[] {
  return labels.map((l) => ({ label: l.label, score: Math.round(l.score * 1e6) / 1e6 }));
}

export function reportAccuracy(accuracy: AccuracyCounter | undefined): void {
  if (!accuracy) return;
  const r = accuracy.report();
  process.stderr.write(`top-1 accuracy: ${(r.accuracy * 100).toFixed(1)} % (${r.correct}/${r.compared})\n`);
}
