import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { ConfigError } from './errors.ts';
import { DEFAULT_MODEL_DIR } from './paths.ts';
import { IMAGE_LIMITS, LABELING } from './settings.ts';

const positiveInt = z.coerce.number().int().positive();

const workerConfigSchema = z.object({
  AWS_REGION: z.string().min(1).default('us-east-1'),
  RESULTS_TABLE: z.string().min(1),
  RESULTS_BUCKET: z.string().min(1),
  MODEL_DIR: z.string().min(1).default(DEFAULT_MODEL_DIR),
  EXECUTION_PROVIDERS: z
    .string()
    .default('cpu')
    .transform((v) =>
      v
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean),
    ),
  INTRA_OP_THREADS: positiveInt.optional(),
  TOP_K: positiveInt.default(LABELING.topK),
  INFERENCE_BATCH_SIZE: positiveInt.optional(),
  DECODE_CONCURRENCY: positiveInt.optional(),
  MAX_IMAGE_BYTES: positiveInt.default(IMAGE_LIMITS.maxBytes),
  MAX_IMAGE_PIXELS: positiveInt.default(IMAGE_LIMITS.maxPixels),
});

export interface WorkerConfig {
  readonly region: string;
  readonly resultsTable: string;
  readonly resultsBucket: string;
  readonly modelDir: string;
  readonly executionProviders: readonly string[];
  readonly intraOpThreads: number;
  readonly topK: number;
  readonly batchSize: number;
  readonly concurrency: number;
  readonly maxBytes: number;
  readonly maxPixels: number;
}

/** Reads a worker's settings once, at start-up; a missing or bad value stops the process. */
export function readWorkerConfig(env: NodeJS.ProcessEnv): WorkerConfig {
  const e = parseEnv(workerConfigSchema, env);
  const cores = availableParallelism();
  return {
    region: e.AWS_REGION,
    resultsTable: e.RESULTS_TABLE,
    resultsBucket: e.RESULTS_BUCKET,
    modelDir: e.MODEL_DIR,
    executionProviders: e.EXECUTION_PROVIDERS,
    intraOpThreads: e.INTRA_OP_THREADS ?? cores,
    topK: e.TOP_K,
    batchSize: e.INFERENCE_BATCH_SIZE ?? LABELING.batchSize,
    concurrency: e.DECODE_CONCURRENCY ?? cores,
    maxBytes: e.MAX_IMAGE_BYTES,
    maxPixels: e.MAX_IMAGE_PIXELS,
  };
}

const queryConfigSchema = z.object({
  AWS_REGION: z.string().min(1).default('us-east-1'),
  RESULTS_TABLE: z.string().min(1),
  IMAGES_BUCKET: z.string().min(1),
  MODEL_DIR: z.string().min(1).default(DEFAULT_MODEL_DIR),
});

export interface QueryConfig {
  readonly region: string;
  readonly resultsTable: string;
  readonly imagesBucket: string;
  /** The model baked into the image: queries read its results unless they name another. */
  readonly modelDir: string;
}

export function readQueryConfig(env: NodeJS.ProcessEnv): QueryConfig {
  const e = parseEnv(queryConfigSchema, env);
  return {
    region: e.AWS_REGION,
    resultsTable: e.RESULTS_TABLE,
    imagesBucket: e.IMAGES_BUCKET,
    modelDir: e.MODEL_DIR,
  };
}

/** The queue a long-running worker (the GPU task) consumes. */
export function readQueueUrl(env: NodeJS.ProcessEnv): string {
  return parseEnv(z.object({ BULK_QUEUE_URL: z.string().url() }), env).BULK_QUEUE_URL;
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
  readonly queueUrl: string;
  readonly jobsTable: string;
}

export function readPlanJobConfig(env: NodeJS.ProcessEnv): PlanJobConfig {
  const e = parseEnv(
    z.object({
      AWS_REGION: z.string().min(1).default('us-east-1'),
      BULK_QUEUE_URL: z.string().url(),
      JOBS_TABLE: z.string().min(1),
    }),
    env,
  );
  return { region: e.AWS_REGION, queueUrl: e.BULK_QUEUE_URL, jobsTable: e.JOBS_TABLE };
}
