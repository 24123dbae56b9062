import { join } from 'node:path';
import { ConfigError } from '../shared/errors.ts';
import { type InvocationSizing, imageCostOf, sizeInvocation } from '../shared/labeling/invocation-budget.ts';
import { MODEL_NAME_IN_STACK, modelNameOfDir } from '../shared/labeling/stack-models.ts';
import { type Manifest, readManifestSync } from '../shared/model/manifest.ts';
import { DEFAULT_MODEL_DIR, REPO_ROOT } from './image.ts';

/** A model the stack is asked to host: its name in the stack and its folder under models/. */
export interface ModelChoice {
  readonly name: string;
  /** Relative to the repository root, directly under models/ (the image build bakes it in). */
  readonly dir: string;
}

/** The models cdk.json's context asks for, the default named. */
export interface ModelsChoice {
  readonly models: readonly ModelChoice[];
  readonly defaultModel: string;
}

/** A hosted model resolved at synthesis: its manifest and the invocation sizes it implies. */
export interface ResolvedModel extends ModelChoice {
  readonly manifest: Manifest;
  readonly sizing: InvocationSizing;
  /**
   * Whether it keeps the construct ids and queue names of a one-model stack (the first
   * model does), so that a deployed stack upgrades in place (decision 0038).
   */
  readonly legacy: boolean;
}

const MODEL_FOLDER = /^models\/[A-Za-z0-9._-]+$/;

/**
 * The `models`, `defaultModel` and `modelDir` context values, checked. `models` is a list
 * (an array in cdk.json, JSON or a comma-separated list of folders from `-c`) whose entries
 * are a folder (named after it) or `{"name", "dir"}`; `modelDir` is the one-model shorthand.
 * Anything wrong stops synthesis with a message naming the setting.
 */
export function modelsContext(values: {
  readonly models?: unknown;
  readonly defaultModel?: unknown;
  readonly modelDir?: unknown;
}): ModelsChoice {
  const { models, defaultModel, modelDir } = values;
  const given = (v: unknown) => v !== undefined && v !== '';
  if (given(models) && given(modelDir)) {
    throw new ConfigError(
      'context "models" and "modelDir" are both set: "modelDir" is the one-model shorthand; list every model in "models"',
    );
  }
  let entries: unknown[];
  if (given(models)) {
    entries = listOf(models);
  } else {
    if (given(modelDir) && typeof modelDir !== 'string') {
      throw new ConfigError(`context "modelDir" must be a folder, got ${JSON.stringify(modelDir)}`);
    }
    entries = [given(modelDir) ? modelDir : DEFAULT_MODEL_DIR];
  }
  const setting = given(models) ? 'models' : 'modelDir';
  const choices = entries.map((entry, i) => modelChoice(entry, `context "${setting}", entry ${i + 1}`));
  const seen = new Set<string>();
  for (const { name } of choices) {
    if (seen.has(name)) {
      throw new ConfigError(
        `context "models" names the model "${name}" twice; give each model its own "name"`,
      );
    }
    seen.add(name);
  }
  let chosenDefault = choices[0]?.name ?? '';
  if (given(defaultModel)) {
    if (typeof defaultModel !== 'string' || !seen.has(defaultModel)) {
      throw new ConfigError(
        `context "defaultModel" is ${JSON.stringify(defaultModel)}, not one of the models: ${[...seen].join(', ')}`,
      );
    }
    chosenDefault = defaultModel;
  }
  return { models: choices, defaultModel: chosenDefault };
}

function listOf(value: unknown): unknown[] {
  let list = value;
  if (typeof value === 'string') {
    if (value.trim().startsWith('[')) {
      try {
        list = JSON.parse(value);
      } catch {
        throw new ConfigError(`context "models" is not JSON: ${value}`);
      }
    } else {
      list = value.split(',').map((t) => t.trim());
    }
  }
  if (!Array.isArray(list) || list.length === 0) {
    throw new ConfigError(
      `context "models" must be a list of model folders or {"name", "dir"} objects, got ${JSON.stringify(value)}`,
    );
  }
  return list;
}

function modelChoice(entry: unknown, where: string): ModelChoice {
  let dir: unknown = entry;
  let name: unknown;
  if (typeof entry === 'object' && entry !== null && !Array.isArray(entry)) {
    const e = entry as Record<string, unknown>;
    const unknownKeys = Object.keys(e).filter((k) => k !== 'name' && k !== 'dir');
    if (unknownKeys.length > 0) throw new ConfigError(`${where}: unknown field "${unknownKeys[0]}"`);
    dir = e.dir;
    name = e.name;
  }
  if (typeof dir !== 'string' || dir === '') {
    throw new ConfigError(`${where}: a model is a folder or {"name", "dir"}, got ${JSON.stringify(entry)}`);
  }
  const folder = dir.replace(/\/+$/, '');
  // The image build copies exactly one folder under models/ (LabelerImage's allow-list).
  if (!MODEL_FOLDER.test(folder)) {
    throw new ConfigError(`${where}: "${dir}" is not a folder directly under models/`);
  }
  if (name === undefined) {
    try {
      name = modelNameOfDir(folder);
    } catch (error) {
      throw new ConfigError(`${where}: ${(error as Error).message}`);
    }
  }
  if (typeof name !== 'string' || !MODEL_NAME_IN_STACK.test(name)) {
    throw new ConfigError(
      `${where}: model name ${JSON.stringify(name)} must be lower case letters, digits and dashes, at most 40 (it becomes part of queue names)`,
    );
  }
  return { name, dir: folder };
}

/**
 * Reads each model's manifest (its id, version and cost per image) from the repository.
 * The first model keeps a one-model stack's ids.
 */
export function resolveModels(choice: ModelsChoice): ResolvedModel[] {
  return choice.models.map((model, i) => {
    let manifest: Manifest;
    try {
      manifest = readManifestSync(join(REPO_ROOT, model.dir));
    } catch (error) {
      throw new ConfigError(
        `context "models": model "${model.name}" (${model.dir}) has no readable manifest: ${(error as Error).message}`,
        error,
      );
    }
    return { ...model, manifest, sizing: sizeInvocation(imageCostOf(manifest)), legacy: i === 0 };
  });
}

/**
 * A per-model construct id or resource name: the first model's is the one-model stack's
 * (so upgrading keeps every resource), the others' carry the model name.
 */
export function perModel(model: Pick<ResolvedModel, 'name' | 'legacy'>, base: string): string {
  return model.legacy ? base : `${base}-${model.name}`;
}

/** Lambda's limit on a function's environment, keys and values together. */
export const LAMBDA_ENVIRONMENT_BYTES = 4096;
/** What the plan-job and query functions' other variables take, generously (decision 0038). */
const OTHER_VARIABLES_BYTES = 700;

/**
 * The size ENV.stackModels takes once deployed, at its longest: queue URLs in the region with
 * the longest name. Each model adds about 230 bytes plus three times its name and its id and
 * version, so a 4 KB environment holds about ten models (decision 0038).
 */
export function stackModelsBytes(
  models: readonly ResolvedModel[],
  stackName: string,
  withBulk: boolean,
): number {
  const url = (queue: string) =>
    `https://sqs.ap-southeast-4.amazonaws.com/123456789012/${stackName}-${queue}`;
  return JSON.stringify({
    default: models[0]?.name ?? '',
    models: models.map((m) => ({
      name: m.name,
      id: m.manifest.id,
      version: m.manifest.version,
      jobsQueueUrl: url(`labeler-${m.name}-jobs`),
      ...(withBulk ? { bulkQueueUrl: url(`labeler-${m.name}-bulk`) } : {}),
      objectsPerMessage: m.sizing.objectsPerMessage,
    })),
  }).length;
}

/** Refuses more models than the functions' environment can name (Lambda's 4 KB). */
export function checkStackModelsFit(
  models: readonly ResolvedModel[],
  stackName: string,
  withBulk: boolean,
): void {
  const bytes = stackModelsBytes(models, stackName, withBulk);
  if (bytes + OTHER_VARIABLES_BYTES > LAMBDA_ENVIRONMENT_BYTES) {
    throw new ConfigError(
      `context "models": ${models.length} models take about ${bytes} bytes of the plan-job and query functions' ` +
        `environment, more than Lambda's ${LAMBDA_ENVIRONMENT_BYTES} bytes leave: host fewer models or shorter names in one stack`,
    );
  }
}
