import { App, type AppProps, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConfigError } from '../shared/errors.ts';
import { ScheduleError } from '../shared/labeling/schedules.ts';
import { modelsContext } from './hosted-models.ts';
import { LabelerStack } from './labeler-stack.ts';

export interface LabelerApp {
  readonly app: App;
  readonly stack: LabelerStack;
}

export interface CreateAppOptions extends AppProps {
  /**
   * Whether cdk-nag's AwsSolutions checks run at synthesis.
   * @default true
   */
  readonly nag?: boolean;
}

/**
 * Feature flags the stack is written against. Set here rather than only in cdk.json so
 * that tests building the app in-process see the same behaviour as `cdk synth`.
 */
export const FEATURE_FLAGS = {
  // Grant S3 server access log delivery through a bucket policy, not the legacy ACL.
  '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy': true,
  '@aws-cdk/aws-iam:minimizePolicies': true,
} as const;

/** The app `cdk` runs (infra/app.ts) and the tests build: the stack plus cdk-nag as a validation plugin. */
export function createApp(options: CreateAppOptions = {}): LabelerApp {
  const { nag = true, ...appProps } = options;
  const app = new App({ ...appProps, context: { ...FEATURE_FLAGS, ...appProps.context } });
  // cdk.json `models: ["models/a", {"name": "b", "dir": "models/b"}]` and `defaultModel: "b"`,
  // or `-c models=models/a,models/b`; `modelDir` is the one-model shorthand (decision 0038).
  const models = modelsContext({
    models: app.node.tryGetContext('models'),
    defaultModel: app.node.tryGetContext('defaultModel'),
    modelDir: app.node.tryGetContext('modelDir'),
  });
  const gpuWorkers: unknown = app.node.tryGetContext('gpuWorkers');
  const createSlr: unknown = app.node.tryGetContext('createEcsServiceLinkedRole');
  const alarmEmail: unknown = app.node.tryGetContext('alarmEmail');
  const gpuInstanceType: unknown = app.node.tryGetContext('gpuInstanceType');
  const gpuInstanceTypes: unknown = app.node.tryGetContext('gpuInstanceTypes');
  const gpuSpot: unknown = app.node.tryGetContext('gpuSpot');
  const schedules: unknown = app.node.tryGetContext('schedules');
  const readableBuckets: unknown = app.node.tryGetContext('readableBuckets');
  const jobsMaxConcurrency = numberContext(app, 'jobsMaxConcurrency', 2, 1000);
  const resultsWarm = numberContext(app, 'resultsTableWarmWrites', 4000, 1_000_000);
  const jobsWarm = numberContext(app, 'jobsTableWarmWrites', 4000, 1_000_000);
  const stack = new LabelerStack(app, 'Labeler', {
    description:
      'Labeler: labels images with an EfficientNet ONNX model (S3 -> SQS -> Lambda/ECS -> DynamoDB)',
    models: models.models,
    defaultModel: models.defaultModel,
    // `-c gpuWorkers=false` leaves out the VPC, ECS cluster and GPU instances.
    gpuWorkers: gpuWorkers !== false && gpuWorkers !== 'false',
    // `-c createEcsServiceLinkedRole=true` in an account that never used ECS (`labeler doctor` tells).
    createEcsServiceLinkedRole: createSlr === true || createSlr === 'true',
    // `-c alarmEmail=ops@example.com` subscribes that address to every alarm.
    alarmEmail: typeof alarmEmail === 'string' && alarmEmail !== '' ? alarmEmail : undefined,
    // `-c gpuInstanceType=g6.2xlarge`: the task's CPU, memory and decode threads follow.
    gpuInstanceType: typeof gpuInstanceType === 'string' ? gpuInstanceType : undefined,
    // `-c gpuInstanceTypes=g6.xlarge,g5.xlarge` (or a JSON array in cdk.json): preferred first.
    gpuInstanceTypes: instanceTypesContext(gpuInstanceTypes),
    // `-c gpuSpot=true`: Spot instances, price-capacity-optimized across the types.
    gpuSpot: gpuSpot === true || gpuSpot === 'true',
    // cdk.json `schedules: [{name, expression, timezone?, bucket?, prefix, target, mode}]`, or `-c schedules='[...]'`.
    schedules: scheduleContext(schedules),
    // cdk.json `readableBuckets: ["other-bucket"]`, or `-c readableBuckets=a,b`: jobs may label them.
    readableBuckets: readableBucketsContext(readableBuckets),
    // cdk.json `jobsMaxConcurrency`, `resultsTableWarmWrites`, `jobsTableWarmWrites`: sized for
    // 10,000,000 B0 images an hour (bench/SCALING-JOBS.md); -c overrides them.
    ...(jobsMaxConcurrency !== undefined ? { jobsMaxConcurrency } : {}),
    ...(resultsWarm !== undefined || jobsWarm !== undefined
      ? {
          warmWriteUnits: {
            ...(resultsWarm !== undefined ? { results: resultsWarm } : {}),
            ...(jobsWarm !== undefined ? { jobs: jobsWarm } : {}),
          },
        }
      : {}),
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  });
  if (nag) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}

/** The `schedules` context: an array in cdk.json, a JSON string from `-c`. */
export function scheduleContext(value: unknown): Record<string, unknown>[] {
  if (value === undefined) return [];
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new ScheduleError(`context "schedules" is not JSON: ${value}`);
    }
  }
  if (!Array.isArray(parsed) || !parsed.every((s) => typeof s === 'object' && s !== null)) {
    throw new ScheduleError('context "schedules" must be an array of objects');
  }
  return parsed as Record<string, unknown>[];
}

/** A list in context: an array in cdk.json, a comma-separated or JSON string from `-c`. */
function listContext(name: string, value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  let list: unknown = value;
  if (typeof value === 'string') {
    try {
      list = value.trim().startsWith('[') ? JSON.parse(value) : value.split(',').map((t) => t.trim());
    } catch {
      throw new ConfigError(`context "${name}" is not JSON: ${value}`);
    }
  }
  if (!Array.isArray(list) || list.length === 0 || !list.every((t) => typeof t === 'string' && t !== '')) {
    throw new ConfigError(`context "${name}" must be a list of names, got ${JSON.stringify(value)}`);
  }
  return list as string[];
}

/** The `gpuInstanceTypes` context, preferred first. */
export function instanceTypesContext(value: unknown): string[] | undefined {
  return listContext('gpuInstanceTypes', value);
}

/** The `readableBuckets` context: buckets besides the images bucket that jobs may label. */
export function readableBucketsContext(value: unknown): string[] {
  const names = value === '' ? [] : (listContext('readableBuckets', value) ?? []);
  for (const name of names) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name)) {
      throw new ConfigError(`context "readableBuckets": "${name}" is not an S3 bucket name`);
    }
  }
  return [...new Set(names)];
}

/**
 * A whole-number context value within [min, max] (a number in cdk.json, a string from -c);
 * undefined when not set. Anything else stops synthesis, naming the setting.
 */
export function numberContext(app: App, name: string, min: number, max: number): number | undefined {
  const value: unknown = app.node.tryGetContext(name);
  if (value === undefined || value === '') return undefined;
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(
      `context "${name}" must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}
