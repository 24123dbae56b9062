import { join, resolve } from 'node:path';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import type { AwsCredentialIdentity } from '@aws-sdk/types';
import { findRunningStack } from '../local/endpoints.ts';
import type { LocalStack } from '../local/stack.ts';
import { type AwsClients, createAwsClients, LOCAL_CREDENTIALS } from '../shared/aws/clients.ts';
import { DynamoResultsStore } from '../shared/aws/dynamo-results-store.ts';
import { createJobsService, type JobsResources } from '../shared/aws/jobs-service.ts';
import { createPlanPorts } from '../shared/aws/plan-job.ts';
import { assertPrefixHasObjects } from '../shared/aws/prefix-contents.ts';
import { QueryApiClient } from '../shared/aws/query-api-client.ts';
import { DynamoSchedules } from '../shared/aws/schedules-local.ts';
import { SchedulerSchedules } from '../shared/aws/schedules-scheduler.ts';
import { readStackOutputs, type StackOutputs } from '../shared/aws/stack-outputs.ts';
import { CODE } from '../shared/error-codes.ts';
import { LabelerError, ModelError } from '../shared/errors.ts';
import type { ExportPorts } from '../shared/labeling/export.ts';
import { imageCostOf, sizeInvocation } from '../shared/labeling/invocation-budget.ts';
import { jobLocation } from '../shared/labeling/job-location.ts';
import type { JobMode, JobsService } from '../shared/labeling/jobs.ts';
import type { SampleSpec } from '../shared/labeling/sample.ts';
import type { SchedulesPort } from '../shared/labeling/schedules.ts';
import {
  defaultModelOf,
  describeModels,
  type HostedModel,
  hostedModelOfJob,
  type JobModel,
  modelNameOfDir,
  parseStackModels,
  resolveHostedModel,
  type StackModels,
} from '../shared/labeling/stack-models.ts';
import { type Manifest, readManifest } from '../shared/model/manifest.ts';
import { resolveModelDir } from '../shared/model/model-store.ts';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../shared/paths.ts';
import { RESOURCE_NAMES } from '../shared/settings.ts';
import { UsageError } from './args.ts';
import { autoTarget, estimateOnStack } from './auto-target.ts';

/** The queues of a stack, by role; each value is the queue's URL. */
export type QueueRole =
  | 'incoming'
  | 'incomingDlq'
  | 'jobs'
  | 'jobsDlq'
  | 'bulk'
  | 'bulkDlq'
  | 'plan'
  | 'planDlq';

/** The physical names a command needs, the same for a deployed stack and the local one. */
export interface StackResources {
  readonly imagesBucket: string;
  readonly resultsBucket: string;
  readonly resultsTable: string;
  readonly jobsTable: string;
  readonly queueUrls: Readonly<Record<QueueRole, string>>;
  /** Buckets the stack's labeling roles may read: its images bucket, then cdk.json's `readableBuckets`. */
  readonly readableBuckets: readonly string[];
  /** The query API's base URL: API Gateway with IAM auth, or the local stack's signed loopback server. */
  readonly queryApiUrl?: string;
  /** The models the stack hosts, each with its queues, and the default (decision 0037). */
  readonly models: StackModels;
}

/**
 * A stack a command talks to. Local and deployed differ only in endpoints and
 * credentials; everything after `openStack` is one code path.
 */
export interface StackConnection {
  readonly kind: 'local' | 'deployed';
  /** "local", or the CloudFormation stack name. */
  readonly name: string;
  readonly region: string;
  readonly clients: AwsClients;
  readonly resources: StackResources;
  /** A deployed stack's outputs, for what only a deployed stack has (schedule group, roles). */
  readonly outputs?: StackOutputs;
  /** A local stack that runs the GPU worker (on the CPU: no GPU locally). */
  readonly localGpuWorker?: boolean;
  /** What the clients sign with, for requests no SDK client makes (the query API). */
  credentials(): Promise<AwsCredentialIdentity>;
  close(): void;
}

/** Options every stack-facing command accepts, for `parse`. */
export const STACK_OPTIONS = {
  stack: { type: 'string' },
  region: { type: 'string' },
  profile: { type: 'string' },
  'data-dir': { type: 'string' },
} as const;

export interface StackValues {
  stack?: string;
  region?: string;
  profile?: string;
  'data-dir'?: string;
}

export const STACK_HELP = `Which stack:
  --stack <name>     "local" (the running "labeler local up"; the default) or a
                     deployed stack's CloudFormation name, whose outputs name its
                     buckets, queues, tables and API
  --region <r>       a deployed stack's region (default: AWS_REGION / the profile's)
  --profile <p>      AWS credentials profile (default: the SDK's usual chain)
  --data-dir <dir>   the local stack's state folder (default .labeler)`;

const LOCAL = 'local';

/** Where `local up` keeps its state, and where commands look for it. */
export const DEFAULT_DATA_DIR = join(PACKAGE_ROOT, '.labeler');

/** Connects to the stack the options name; the caller closes it. */
export async function openStack(values: StackValues): Promise<StackConnection> {
  const name = values.stack ?? LOCAL;
  if (name === LOCAL) {
    for (const option of ['region', 'profile'] as const) {
      if (values[option] !== undefined)
        throw new UsageError(`--${option} goes with a deployed stack (--stack <name>), not the local one`);
    }
    return openLocal(values['data-dir'] ? resolve(values['data-dir']) : DEFAULT_DATA_DIR);
  }
  if (values['data-dir'] !== undefined)
    throw new UsageError('--data-dir goes with the local stack, not --stack <name>');
  return openDeployed(name, values.region, values.profile);
}

async function openDeployed(name: string, region?: string, profile?: string): Promise<StackConnection> {
  const outputs = await readStackOutputs(name, {
    ...(region ? { region } : {}),
    ...(profile ? { profile } : {}),
  });
  const resources: StackResources = {
    imagesBucket: outputs.get('ImagesBucket'),
    resultsBucket: outputs.get('ResultsBucket'),
    resultsTable: outputs.get('ResultsTable'),
    jobsTable: outputs.get('JobsTable'),
    queueUrls: {
      incoming: outputs.get('IncomingQueueUrl'),
      incomingDlq: outputs.get('IncomingDlqUrl'),
      jobs: outputs.get('JobsQueueUrl'),
      jobsDlq: outputs.get('JobsDlqUrl'),
      bulk: outputs.get('BulkQueueUrl'),
      bulkDlq: outputs.get('BulkDlqUrl'),
      plan: outputs.get('PlanQueueUrl'),
      planDlq: outputs.get('PlanDlqUrl'),
    },
    readableBuckets: outputs.get('ReadableBuckets').split(','),
    queryApiUrl: outputs.get('QueryApiUrl'),
    models: parseStackModels(outputs.get('Models'), `stack ${name}'s output Models`),
  };
  const clients = createAwsClients({ region: outputs.region, ...(profile ? { profile } : {}) });
  return {
    kind: 'deployed',
    name,
    region: outputs.region,
    clients,
    resources,
    outputs,
    credentials: () => clients.s3.config.credentials(),
    close: () => destroy(clients),
  };
}

async function openLocal(dataDir: string): Promise<StackConnection> {
  const running = await findRunningStack(dataDir);
  const clients = createAwsClients({ region: running.region, endpoints: running.endpoints, local: true });
  try {
    const url = async (queue: string) =>
      (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: queue }))).QueueUrl ?? '';
    const names = RESOURCE_NAMES;
    const resources: StackResources = {
      imagesBucket: names.imagesBucket,
      resultsBucket: names.resultsBucket,
      resultsTable: names.resultsTable,
      jobsTable: names.jobsTable,
      queueUrls: {
        incoming: await url(names.incomingQueue),
        incomingDlq: await url(names.incomingDlq),
        jobs: await url(names.jobsQueue),
        jobsDlq: await url(names.jobsDlq),
        bulk: await url(names.bulkQueue),
        bulkDlq: await url(names.bulkDlq),
        plan: await url(names.planQueue),
        planDlq: await url(names.planDlq),
      },
      readableBuckets: [names.imagesBucket, ...(running.readableBuckets ?? [])],
      ...(running.endpoints.queryApi ? { queryApiUrl: running.endpoints.queryApi } : {}),
      models: running.models ?? (await oneModelOf(url, DEFAULT_MODEL_DIR)),
    };
    return {
      kind: 'local',
      name: LOCAL,
      region: running.region,
      clients,
      resources,
      ...(running.gpuWorker === 'cpu' ? { localGpuWorker: true } : {}),
      credentials: async () => LOCAL_CREDENTIALS,
      close: () => destroy(clients),
    };
  } catch (error) {
    destroy(clients);
    throw error;
  }
}

/** The one model of a local stack started before stacks hosted several: the bundled one. */
async function oneModelOf(url: (queue: string) => Promise<string>, dir: string): Promise<StackModels> {
  const manifest = await readManifest(dir);
  const name = modelNameOfDir(dir);
  return {
    default: name,
    models: [
      {
        name,
        id: manifest.id,
        version: manifest.version,
        jobsQueueUrl: await url(RESOURCE_NAMES.jobsQueue),
        bulkQueueUrl: await url(RESOURCE_NAMES.bulkQueue),
        objectsPerMessage: sizeInvocation(imageCostOf(manifest)).objectsPerMessage,
        dir,
      },
    ],
  };
}

/**
 * A connection to a stack this process runs itself (`local run`): the same resources
 * `openStack` finds for a running `local up`. Closing it leaves the stack to its owner.
 */
export function connectionTo(stack: LocalStack): StackConnection {
  const names = stack.names;
  const q = stack.queues;
  return {
    kind: 'local',
    name: LOCAL,
    region: stack.region,
    clients: stack.clients,
    ...(stack.gpuWorker ? { localGpuWorker: true } : {}),
    resources: {
      imagesBucket: names.imagesBucket,
      resultsBucket: names.resultsBucket,
      resultsTable: names.resultsTable,
      jobsTable: names.jobsTable,
      queueUrls: {
        incoming: q.incoming.url,
        incomingDlq: q.incomingDlq.url,
        jobs: q.jobs.url,
        jobsDlq: q.jobsDlq.url,
        bulk: q.bulk.url,
        bulkDlq: q.bulkDlq.url,
        plan: q.plan.url,
        planDlq: q.planDlq.url,
      },
      readableBuckets: stack.readableBuckets,
      models: stack.models,
    },
    credentials: async () => LOCAL_CREDENTIALS,
    close: () => undefined,
  };
}

/** Where the jobs service of a stack finds its table, queues and readable buckets. */
export function jobsResourcesOf(resources: StackResources): JobsResources {
  return {
    jobsTable: resources.jobsTable,
    resultsTable: resources.resultsTable,
    planQueueUrl: resources.queueUrls.plan,
    models: resources.models,
    readableBuckets: resources.readableBuckets,
  };
}

/** The stack's results table. */
export function resultsStoreOf(stack: StackConnection): DynamoResultsStore {
  return new DynamoResultsStore(stack.clients.db, stack.resources.resultsTable);
}

/** The stack's jobs. */
export function jobsServiceOf(stack: StackConnection): JobsService {
  const resources = {
    ...jobsResourcesOf(stack.resources),
    // A local stack consumes the GPU queue only when started with --gpu-worker.
    ...(stack.kind === 'local' ? { gpuWorkers: stack.localGpuWorker === true } : {}),
  };
  return createJobsService(stack.clients, resources, stack.region);
}

/** What reading a selection of results (a job's, a prefix's) needs on a stack: export, evaluate, review. */
export function selectionPortsOf(stack: StackConnection): ExportPorts {
  const names = jobsResourcesOf(stack.resources);
  return {
    results: resultsStoreOf(stack),
    jobs: jobsServiceOf(stack),
    listPage: createPlanPorts(stack.clients, names, stack.region).listPage,
  };
}

export interface JobsConnection {
  /** The hosted model `--model` names (default: the stack's default): jobs started here label with it. */
  readonly model: HostedModel;
  readonly jobs: JobsService;
  readonly imagesBucket: string;
  readonly readableBuckets: readonly string[];
  autoTarget(
    bucket: string,
    prefix: string,
    mode: JobMode,
    sample?: SampleSpec,
  ): ReturnType<typeof autoTarget>;
  /** `start --dry-run`: counts and prices the job (its sample only, with one); starts nothing. */
  estimate(
    bucket: string,
    prefix: string,
    mode: JobMode,
    sample?: SampleSpec,
  ): ReturnType<typeof estimateOnStack>;
  /** Throws job/no-objects, naming what is there, when nothing is under the prefix. */
  assertHasObjects(bucket: string, prefix: string): Promise<void>;
  schedules(): SchedulesPort;
  close(): void;
}

/**
 * The hosted model `--model` names: a name, id or id@version of one the stack hosts, or a
 * model folder (or pulled name) whose manifest is one the stack hosts; nothing: the default.
 */
export async function hostedModelChoice(
  models: StackModels,
  choice: string | undefined,
): Promise<HostedModel> {
  try {
    return resolveHostedModel(models, choice);
  } catch (error) {
    if (choice === undefined || !(error instanceof LabelerError) || error.code !== CODE.job.unknownModel)
      throw error;
    let manifest: Manifest;
    try {
      manifest = await readManifest(resolveModelDir(choice));
    } catch {
      throw error;
    }
    try {
      return resolveHostedModel(models, `${manifest.id}@${manifest.version}`);
    } catch {
      throw new LabelerError(
        CODE.job.unknownModel,
        `${choice} holds ${manifest.id}@${manifest.version}, which this stack does not host; it hosts ${describeModels(models)}`,
      );
    }
  }
}

/**
 * A hosted model's manifest (its cost per image prices a job, its labels check a query),
 * read from its folder where the stack was made: absolute for a local stack, relative to
 * this repository for a deployed one.
 */
export async function hostedManifest(model: HostedModel): Promise<Manifest> {
  return (await hostedFolder(model)).manifest;
}

/**
 * A hosted model's folder where the stack was made (absolute for a local stack, relative to
 * this repository for a deployed one), when it is on this machine and holds that model.
 */
export async function hostedModelFolder(
  model: HostedModel,
): Promise<{ dir: string; manifest: Manifest } | undefined> {
  const dir = model.dir === undefined ? undefined : resolve(PACKAGE_ROOT, model.dir);
  const manifest = dir ? await readManifest(dir).catch(() => undefined) : undefined;
  return dir && manifest && manifest.id === model.id && manifest.version === model.version
    ? { dir, manifest }
    : undefined;
}

/** hostedModelFolder, or model/not-found saying where to run the command. */
async function hostedFolder(model: HostedModel): Promise<{ dir: string; manifest: Manifest }> {
  const found = await hostedModelFolder(model);
  if (found) return found;
  const dir = model.dir === undefined ? undefined : resolve(PACKAGE_ROOT, model.dir);
  throw new ModelError(
    CODE.model.notFound,
    `the stack hosts ${model.name} (${model.id}@${model.version}), but its folder ${dir ?? '(not recorded)'} ` +
      'does not hold it on this machine: run the command where the stack was deployed from, or give --model <its folder>',
  );
}

/**
 * The folder of the model whose labels a command works in: `--model` (a model the stack
 * hosts, by name, id or id@version, else a folder or a pulled name), else the job's model,
 * else the stack's default model; the bundled model where no stack is open.
 */
export async function labelsModelDir(
  models: StackModels | undefined,
  option: string | undefined,
  jobModel?: JobModel,
): Promise<string> {
  if (models === undefined) return resolveModelDir(option);
  let hosted: HostedModel | undefined;
  if (option !== undefined) {
    // A hosted model's name, id or id@version; anything else is a folder or a pulled name.
    try {
      hosted = resolveHostedModel(models, option);
    } catch {
      return resolveModelDir(option);
    }
  } else {
    hosted = jobModel ? hostedModelOfJob(models, jobModel) : defaultModelOf(models);
  }
  return (await hostedFolder(hosted)).dir;
}

/**
 * The jobs of the stack the options name (the running local one by default), through
 * the same service either way; only schedules differ (EventBridge Scheduler on AWS).
 */
export async function openJobs(values: StackValues & { model?: string }): Promise<JobsConnection> {
  const stack = await openStack(values);
  let model: HostedModel;
  try {
    model = await hostedModelChoice(stack.resources.models, values.model);
  } catch (error) {
    stack.close();
    throw error;
  }
  // Read only by what prices a job: listing or cancelling jobs needs no model folder.
  let manifest: Promise<Manifest> | undefined;
  const manifestOf = () => {
    manifest ??= hostedManifest(model);
    return manifest;
  };
  const { resources, outputs } = stack;
  let scheduler: SchedulerClient | undefined;
  return {
    model,
    jobs: jobsServiceOf(stack),
    imagesBucket: resources.imagesBucket,
    readableBuckets: resources.readableBuckets,
    autoTarget: async (bucket, prefix, mode, sample) =>
      autoTarget(stack, await manifestOf(), bucket, prefix, mode, sample),
    estimate: async (bucket, prefix, mode, sample) =>
      estimateOnStack(stack, await manifestOf(), bucket, prefix, mode, sample),
    assertHasObjects: (bucket, prefix) => assertPrefixHasObjects(stack.clients.s3, bucket, prefix),
    schedules: () => {
      if (!outputs) return new DynamoSchedules(stack.clients.db);
      scheduler ??= new SchedulerClient({
        region: stack.region,
        ...(values.profile ? { profile: values.profile } : {}),
      });
      return new SchedulerSchedules(scheduler, {
        scheduleGroup: outputs.get('ScheduleGroupName'),
        schedulerRoleArn: outputs.get('SchedulerRoleArn'),
        planQueueArn: outputs.get('PlanQueueArn'),
        planDlqArn: outputs.get('PlanDlqArn'),
      });
    },
    close: () => {
      stack.close();
      scheduler?.destroy();
    },
  };
}

/**
 * `--bucket` and `--prefix` as the bucket and folder a command reads (an s3:// URL as
 * --prefix names both, as in "jobs start"); a refusal is the user's usage error.
 */
export function prefixLocation(
  values: { bucket?: string | undefined; prefix?: string | undefined },
  defaultBucket: string,
): { bucket: string; prefix: string } {
  try {
    return jobLocation({ bucket: values.bucket, prefix: values.prefix ?? '' }, defaultBucket);
  } catch (error) {
    if (error instanceof LabelerError) throw new UsageError(`[${error.code}] ${error.message}`);
    throw error;
  }
}

function destroy(clients: AwsClients): void {
  clients.s3.destroy();
  clients.sqs.destroy();
  clients.dynamo.destroy();
}

/** The stack's query API, signed with the credentials its other clients use. */
export function queryApiOf(stack: StackConnection): QueryApiClient {
  const url = stack.resources.queryApiUrl;
  if (!url) {
    throw new LabelerError(
      CODE.query.noApi,
      stack.kind === 'local'
        ? 'the running local stack serves no query API (started by an older labeler); restart "labeler local up"'
        : `stack ${stack.name} has no QueryApiUrl output; deploy the current stack`,
    );
  }
  return new QueryApiClient({ url, region: stack.region, credentials: () => stack.credentials() });
}
