// Cold start in a fresh process: process start -> modules imported -> model loaded -> first label.
// The heavy modules are imported dynamically so their cost is measured, not hidden in start-up.
import { readFile } from 'node:fs/promises';
import { workerMain } from '../lib/child.ts';

export interface ColdStartArgs {
  readonly modelDir: string;
  readonly image: string;
}

/** Absolute times (ms since the epoch, sub-ms resolution) of each milestone. */
export interface ColdStartResult {
  readonly processStart: number;
  readonly importsDone: number;
  readonly modelLoaded: number;
  readonly firstLabel: number;
  readonly label: string;
}

const now = () => performance.timeOrigin + performance.now();

await workerMain<ColdStartArgs, ColdStartResult>(async (args) => {
  const processStart = performance.timeOrigin;
  const { createImageLabeler } = await import('../../shared/labeling/create-labeler.ts');
  const importsDone = now();
  const labeler = await createImageLabeler({ modelDir: args.modelDir });
  const modelLoaded = now();
  const [outcome] = await labeler.labelBatch([args.image], (p) => readFile(p));
  const firstLabel = now();
  if (outcome?.status !== 'ok') throw new Error(`first label failed: ${JSON.stringify(outcome)}`);
  return {
    processStart,
    importsDone,
    modelLoaded,
    firstLabel,
    label: outcome.labels[0]?.label ?? '',
  };
});
