import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { CODE } from '../shared/error-codes.ts';
import { LabelerError } from '../shared/errors.ts';
import { type ModelChoice, resolveModelChoice } from '../shared/labeling/compare-read.ts';
import { type HostedModel, resolveHostedModel, type StackModels } from '../shared/labeling/stack-models.ts';
import { UsageError } from './args.ts';
import { hostedModelFolder } from './stack.ts';

/**
 * `query`'s and `export`'s `--model`: whose results to read. First a model the stack hosts,
 * by name, id or id@version (its folder, where this machine has it, gives the labels);
 * else a folder or a model name (its manifest gives id, version and labels), or
 * `id@version` alone, as `labeler compare` takes it: a stack may hold a second model's
 * results without this machine holding the model, or hosting it any more.
 * Without it: the stack's default model, the one uploads are labeled with.
 */
export async function resultsModel(option: string | undefined, models: StackModels): Promise<ModelChoice> {
  const local = await folderModel(option);
  if (local) return local;
  let hosted: HostedModel | undefined;
  try {
    hosted = resolveHostedModel(models, option);
  } catch (error) {
    // Not hosted (or hosted in several versions): a folder, a pulled name or id@version.
    if (!(error instanceof LabelerError && error.code === CODE.job.unknownModel) || option === undefined)
      throw error;
    return resolveModelChoice(option);
  }
  return hostedChoice(hosted);
}

/**
 * A `--model` that is a path to an existing folder (it has a slash: a hosted model's name
 * never does) is that folder, resolved before any stack is opened: a label it does not
 * have is refused without waiting on one. Anything else needs the stack's models.
 */
export async function folderModel(option: string | undefined): Promise<ModelChoice | undefined> {
  if (option === undefined || !option.includes('/') || !existsSync(resolve(option))) return undefined;
  return resolveModelChoice(option);
}

/** A hosted model, with its labels where its folder is on this machine and holds that model. */
async function hostedChoice(model: HostedModel): Promise<ModelChoice> {
  const folder = await hostedModelFolder(model);
  if (folder) return resolveModelChoice(folder.dir);
  return { name: `${model.id}@${model.version}`, ref: { id: model.id, version: model.version } };
}

/** A label the model does not have is a usage error; `id@version` names no labels to check against. */
export function checkLabel(model: ModelChoice, label: string): void {
  if (model.classes === undefined || model.classes.includes(label)) return;
  throw new UsageError(
    `unknown label "${label}": model ${model.name} has the labels ${model.classes.map((l) => JSON.stringify(l)).join(', ')}`,
  );
}
