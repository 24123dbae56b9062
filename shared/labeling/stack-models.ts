import { CODE } from '../error-codes.ts';
import { ConfigError, LabelerError } from '../errors.ts';
import type { ModelRef } from './results.ts';

/**
 * A model a stack hosts (decision 0037): its name in the stack, the id and version its
 * results are keyed by, and the queues its own workers consume. Each hosted model has its
 * own labeling workers (a classify function and GPU workers with the model baked in), so
 * a job names a model by sending its images to that model's queues.
 */
export interface HostedModel extends ModelRef {
  /** The name `jobs start --model` and cdk.json's `defaultModel` use (MODEL_NAME_IN_STACK). */
  readonly name: string;
  /** Target `lambda`: the model's classify function's jobs queue. */
  readonly jobsQueueUrl: string;
  /** Target `gpu`: the model's GPU workers' queue; absent where the stack has no GPU workers. */
  readonly bulkQueueUrl?: string;
  /** Dead-letter queues of the two, for `labeler dlq`. */
  readonly jobsDlqUrl?: string;
  readonly bulkDlqUrl?: string;
  /** Objects per job message, sized from the model's cost per image (sizeInvocation). */
  readonly objectsPerMessage: number;
  /**
   * The model's folder where the stack was made (local: absolute; deployed: relative to the
   * repository), for what needs its manifest (estimates, label names); may be absent here.
   */
  readonly dir?: string;
}

/** The models of one stack; `default` is the name of the one uploads are labeled with. */
export interface StackModels {
  readonly default: string;
  readonly models: readonly HostedModel[];
}

/** A job's model: the id and version its results carry, and its name in the stack for routing. */
export interface JobModel extends ModelRef {
  /** Absent on jobs started before stacks hosted several models: routed by id and version. */
  readonly name?: string;
}

/**
 * A hosted model's name: it becomes part of queue names and construct ids, so lower case,
 * digits and dashes only (a folder name like `fashion-efficientnet` qualifies).
 */
export const MODEL_NAME_IN_STACK = /^[a-z0-9][a-z0-9-]{0,39}$/;

/** The name a model folder gets in a stack when none is given: its folder name, made legal. */
export function modelNameOfDir(dir: string): string {
  const base = dir.replace(/\/+$/, '').split('/').pop() ?? '';
  const name = base
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  if (!MODEL_NAME_IN_STACK.test(name)) {
    throw new ConfigError(`cannot name a model after the folder "${dir}"; give it a name`);
  }
  return name;
}

/** What naming a model needs: its name in the stack, id and version (no queues). */
export interface NamedModel extends ModelRef {
  readonly name: string;
}

/** A list of models with one default: a stack's, or what synthesis is about to deploy. */
export interface ModelList<M extends NamedModel> {
  readonly default: string;
  readonly models: readonly M[];
}

/** The default model of a stack's models. */
export function defaultModelOf<M extends NamedModel>(models: ModelList<M>): M {
  const found = models.models.find((m) => m.name === models.default);
  if (!found) throw new ConfigError(`the default model "${models.default}" is not among the stack's models`);
  return found;
}

/**
 * The hosted model a job or query names: by name, by id, or by id@version; nothing means
 * the stack's default. A model the stack does not host is the caller's error, naming the
 * ones it does.
 */
export function resolveHostedModel<M extends NamedModel>(models: ModelList<M>, choice?: string): M {
  if (choice === undefined || choice === '') return defaultModelOf(models);
  const found =
    models.models.find((m) => m.name === choice) ??
    models.models.find((m) => `${m.id}@${m.version}` === choice) ??
    uniqueById(models, choice);
  if (found) return found;
  throw new LabelerError(
    CODE.job.unknownModel,
    `this stack hosts no model "${choice}"; it hosts ${describeModels(models)}`,
  );
}

function uniqueById<M extends NamedModel>(models: ModelList<M>, id: string): M | undefined {
  const matches = models.models.filter((m) => m.id === id);
  if (matches.length > 1) {
    throw new LabelerError(
      CODE.job.unknownModel,
      `the stack hosts ${matches.length} versions of "${id}"; name one as id@version or by name: ${describeModels(models)}`,
    );
  }
  return matches[0];
}

/** `a (id@1.0.0, default), b (other@2.0.0)`. */
export function describeModels(models: ModelList<NamedModel>): string {
  return models.models
    .map((m) => `${m.name} (${m.id}@${m.version}${m.name === models.default ? ', default' : ''})`)
    .join(', ');
}

/**
 * The hosted model a job labels with: by its recorded name; a job recorded before stacks
 * hosted several models has none: the model with its id and version, else the default.
 */
export function hostedModelOfJob(models: StackModels, model: JobModel): HostedModel {
  return (
    (model.name !== undefined ? models.models.find((m) => m.name === model.name) : undefined) ??
    models.models.find((m) => m.id === model.id && m.version === model.version) ??
    defaultModelOf(models)
  );
}

/**
 * Where a job's images go: its model's queue for its target, in messages of that model's
 * size (one lookup for both).
 */
export function routeOfJob(
  models: StackModels,
  model: JobModel,
  target: 'lambda' | 'gpu',
): HostedModel & { readonly queueUrl: string } {
  const hosted = hostedModelOfJob(models, model);
  const queueUrl = target === 'lambda' ? hosted.jobsQueueUrl : hosted.bulkQueueUrl;
  if (!queueUrl) {
    throw new LabelerError(
      CODE.job.noGpuWorker,
      `model "${hosted.name}" has no GPU workers in this stack; use --target lambda`,
    );
  }
  return { ...hosted, queueUrl };
}

/** Where a job's images go: its model's queue for its target. */
export function queueOfJob(models: StackModels, model: JobModel, target: 'lambda' | 'gpu'): string {
  return routeOfJob(models, model, target).queueUrl;
}

/** The JSON of ENV.stackModels and of the stack's `Models` output, checked. */
export function parseStackModels(text: string, source = 'the stack models'): StackModels {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ConfigError(`${source} are not JSON: ${text.slice(0, 200)}`);
  }
  const record = value as { default?: unknown; models?: unknown };
  if (typeof record !== 'object' || record === null || !Array.isArray(record.models)) {
    throw new ConfigError(`${source} must be {"default": name, "models": [...]}`);
  }
  const models = record.models.map((m, i) => hostedModel(m, `${source}, model ${i + 1}`));
  if (models.length === 0) throw new ConfigError(`${source} name no model`);
  const names = new Set(models.map((m) => m.name));
  if (names.size !== models.length) throw new ConfigError(`${source} repeat a model name`);
  const stackModels = { default: typeof record.default === 'string' ? record.default : '', models };
  defaultModelOf(stackModels);
  return stackModels;
}

function hostedModel(value: unknown, where: string): HostedModel {
  const m = value as Record<string, unknown>;
  const text = (field: string, optional = false): string | undefined => {
    const v = m?.[field];
    if (v === undefined && optional) return undefined;
    if (typeof v !== 'string' || v === '') throw new ConfigError(`${where}: "${field}" must be a string`);
    return v;
  };
  const name = text('name') as string;
  if (!MODEL_NAME_IN_STACK.test(name)) {
    throw new ConfigError(`${where}: "${name}" is not a model name (${MODEL_NAME_IN_STACK.source})`);
  }
  const objectsPerMessage = m.objectsPerMessage;
  if (
    typeof objectsPerMessage !== 'number' ||
    !Number.isInteger(objectsPerMessage) ||
    objectsPerMessage < 1
  ) {
    throw new ConfigError(`${where}: "objectsPerMessage" must be a whole number from 1`);
  }
  const bulkQueueUrl = text('bulkQueueUrl', true);
  const jobsDlqUrl = text('jobsDlqUrl', true);
  const bulkDlqUrl = text('bulkDlqUrl', true);
  const dir = text('dir', true);
  return {
    name,
    id: text('id') as string,
    version: text('version') as string,
    jobsQueueUrl: text('jobsQueueUrl') as string,
    ...(bulkQueueUrl ? { bulkQueueUrl } : {}),
    ...(jobsDlqUrl ? { jobsDlqUrl } : {}),
    ...(bulkDlqUrl ? { bulkDlqUrl } : {}),
    objectsPerMessage,
    ...(dir ? { dir } : {}),
  };
}
