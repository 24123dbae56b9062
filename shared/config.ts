import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { ConfigError } from './errors.ts';
import { parseStackModels, type StackModels } from './labeling/stack-models.ts';
import { DEFAULT_MODEL_DIR } from './paths.ts';
import { CLASSIFY, ENV, type EnvName, GPU_WORKER, IMAGE_LIMITS, LABELING, RUNTIME_ENV } from './settings.ts';

const positiveInt = z.coerce.number().int().positive();
const booleanFlag = z.enum(['true', 'false']).transform((v) => v === 'true');
const region = z.string().min(1).default('us-east-1');

// Every key below is a name from ENV (shared/settings.ts): infra sets exactly these.
const workerConfigSchema = z.object({
  [ENV.region]: region,
  [ENV.resultsTable]: z.string().min(1),
  [ENV.resultsBucket]: z.string().min(1),
  [ENV.modelDir]: z.string().min(1).default(DEFAULT_MODEL_DIR),
  [ENV.executionProviders]: z
    .string()
    .default('cpu')
    .transform((v) =>
      v
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean),
    ),
  [ENV.allowCpuFallback]: booleanFlag.optional(),
  [ENV.intraOpThreads]: positiveInt.optional(),
  [ENV.topK]: positiveInt.default(LABELING.topK),
  [ENV.inferenceBatchSize]: positiveInt.optional(),
  [ENV.decodeConcurrency]: positiveInt.optional(),
  [ENV.maxImageBytes]: positiveInt.default(IMAGE_LIMITS.maxBytes),
  [ENV.maxImagePixels]: positiveInt.default(IMAGE_LIMITS.maxPixels),
  /** Where job-tagged images are counted (decision 0014); without it job images are labeled uncounted. */
  [ENV.jobsTable]: z.string().min(1).optional(),
  /**
   * Where a big job's finishing recount is sent as paged steps (decision 0027); without it
   * (the GPU task: no invocation timeout) the worker recounts inline.
   */
  [ENV.planQueueUrl]: z.string().url().optional(),
});

const gpuWorkerConfigSchema = workerConfigSchema.extend({
  [ENV.bulkQueueUrl]: z.string().url(),
  [ENV.bulkQueueArn]: z.string().startsWith('arn:'),
});

// The stack's models (shared/labeling/stack-models.ts), checked as they are read.
const stackModels = z.string().transform((text, ctx) => {
  try {
    return parseStackModels(text, ENV.stackModels);
  } catch (error) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (error as Error).message });
    return z.NEVER;
  }
});

const queryConfigSchema = z.object({
  [ENV.region]: region,
  [ENV.resultsTable]: z.string().min(1),
  [ENV.imagesBucket]: z.string().min(1),
  // Queries read the default model's results unless they name another.
  [ENV.stackModels]: stackModels,
});

const planJobConfigSchema = z.object({
  [ENV.region]: region,
  [ENV.planQueueUrl]: z.string().url(),
  [ENV.jobsTable]: z.string().min(1),
  // No results table: planning lists and enqueues; `stale` is decided by the workers.
  // Each job's images go to its model's queues, in messages sized from that model.
  [ENV.stackModels]: stackModels,
});

/**
 * What each entry point reads from its environment: its config schema plus the
 * variables libraries read themselves. test/infra/env-contract.test.ts holds the
 * stack to exactly this.
 */
export const ENTRY_ENV = {
  classify: envOf(workerConfigSchema),
  gpuWorker: envOf(gpuWorkerConfigSchema),
  query: envOf(queryConfigSchema),
  planJob: envOf(planJobConfigSchema),
} as const;

export interface EntryEnv {
  /** Must be set: the schema has no default. */
  readonly required: readonly EnvName[];
  /** Read when set. */
  readonly optional: readonly EnvName[];
}

function envOf(schema: z.ZodObject): EntryEnv {
  const names = Object.keys(schema.shape) as EnvName[];
  const required = names.filter((name) => !schema.shape[name]?.safeParse(undefined).success);
  return {
    required,
    optional: [...names.filter((name) => !required.includes(name)), ...RUNTIME_ENV],
  };
}

export interface WorkerConfig {
  readonly region: string;
  readonly resultsTable: string;
  readonly resultsBucket: string;
  readonly modelDir: string;
  readonly executionProviders: readonly string[];
  /**
   * Whether a worker asking for a non-CPU execution provider may run on the CPU when
   * that provider cannot load; when false it refuses to start (model/provider-unavailable).
   * @default true
   */
  readonly allowCpuFallback?: boolean;
  readonly intraOpThreads: number;
  readonly topK: number;
  readonly batchSize: number;
  readonly concurrency: number;
  readonly maxBytes: number;
  readonly maxPixels: number;
  /** The jobs table, where the images of a labeling job are counted. */
  readonly jobsTable?: string;
  /** The plan queue, where a big job's finishing recount goes as paged steps (decision 0027). */
  readonly planQueueUrl?: string;
  /** Tests (local stack): recount jobs above this many images in steps. @default JOBS.inlineRecountMax */
  readonly inlineRecountMax?: number;
  /** Tests (local stack): markers per recount page. @default DynamoDB's 1 MB page */
  readonly recountPageLimit?: number;
  /**
   * The maxReceiveCount of the queue this worker consumes: the constant infra gives the
   * queue's redrive policy, not an environment variable, so the two cannot differ. On the
   * last receive, job images still failing are recorded failed (decision 0014).
   */
  readonly maxReceiveCount?: number;
}

/** Reads a worker's settings once, at start-up; a missing or bad value stops the process. */
export function readWorkerConfig(env: NodeJS.ProcessEnv): WorkerConfig {
  return {
    ...toWorkerConfig(parseEnv(workerConfigSchema, env), true),
    maxReceiveCount: CLASSIFY.maxReceiveCount,
  };
}

export interface GpuWorkerConfig extends WorkerConfig {
  readonly queueUrl: string;
  readonly queueArn: string;
}

/** The GPU task's settings: a worker's plus its queue; CPU fallback off unless asked for. */
export function readGpuWorkerConfig(env: NodeJS.ProcessEnv): GpuWorkerConfig {
  const e = parseEnv(gpuWorkerConfigSchema, env);
  return {
    ...toWorkerConfig(e, GPU_WORKER.allowCpuFallback),
    maxReceiveCount: GPU_WORKER.maxReceiveCount,
    queueUrl: e[ENV.bulkQueueUrl],
    queueArn: e[ENV.bulkQueueArn],
  };
}

function toWorkerConfig(e: z.infer<typeof workerConfigSchema>, fallbackByDefault: boolean): WorkerConfig {
  const cores = availableParallelism();
  return {
    region: e[ENV.region],
    resultsTable: e[ENV.resultsTable],
    resultsBucket: e[ENV.resultsBucket],
    modelDir: e[ENV.modelDir],
    executionProviders: e[ENV.executionProviders],
    allowCpuFallback: e[ENV.allowCpuFallback] ?? fallbackByDefault,
    intraOpThreads: e[ENV.intraOpThreads] ?? cores,
    topK: e[ENV.topK],
    batchSize: e[ENV.inferenceBatchSize] ?? LABELING.batchSize,
    concurrency: e[ENV.decodeConcurrency] ?? cores,
    maxBytes: e[ENV.maxImageBytes],
    maxPixels: e[ENV.maxImagePixels],
    ...(e[ENV.jobsTable] ? { jobsTable: e[ENV.jobsTable] } : {}),
    ...(e[ENV.planQueueUrl] ? { planQueueUrl: e[ENV.planQueueUrl] } : {}),
  };
}

export interface QueryConfig {
  readonly region: string;
  readonly resultsTable: string;
  readonly imagesBucket: string;
  /** The stack's models: queries read the default one's results unless they name another. */
  readonly models: StackModels;
}

export function readQueryConfig(env: NodeJS.ProcessEnv): QueryConfig {
  const e = parseEnv(queryConfigSchema, env);
  return {
    region: e[ENV.region],
    resultsTable: e[ENV.resultsTable],
    imagesBucket: e[ENV.imagesBucket],
    models: e[ENV.stackModels],
  };
}

function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid environment: ${problems}`);
  }
  return parsed.data;
}

export interface PlanJobConfig {
  readonly region: string;
  readonly jobsTable: string;
  readonly planQueueUrl: string;
  readonly models: StackModels;
}

export function readPlanJobConfig(env: NodeJS.ProcessEnv): PlanJobConfig {
  const e = parseEnv(planJobConfigSchema, env);
  return {
    region: e[ENV.region],
    jobsTable: e[ENV.jobsTable],
    planQueueUrl: e[ENV.planQueueUrl],
    models: e[ENV.stackModels],
  };
}
