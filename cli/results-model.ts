import { type ModelChoice, resolveModelChoice } from '../shared/labeling/compare-read.ts';
import { resolveModelDir } from '../shared/model/model-store.ts';
import { UsageError } from './args.ts';

/**
 * `query`'s and `export`'s `--model`: whose results to read. A folder or a model name (its
 * manifest gives id, version and labels), or `id@version` alone, as `labeler compare` takes
 * it: a stack may hold a second model's results without this machine holding the model.
 * Without it: the bundled model, what the stack labels uploads with by default.
 */
export function resultsModel(option: string | undefined): Promise<ModelChoice> {
  return resolveModelChoice(option ?? resolveModelDir(undefined));
}

/** A label the model does not have is a usage error; `id@version` names no labels to check against. */
export function checkLabel(model: ModelChoice, label: string): void {
  if (model.classes === undefined || model.classes.includes(label)) return;
  throw new UsageError(
    `unknown label "${label}": model ${model.name} has the labels ${model.classes.map((l) => JSON.stringify(l)).join(', ')}`,
  );
}
