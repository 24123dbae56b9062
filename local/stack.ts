import { type ChildProcess, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CreateTableCommand, ResourceInUseException } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { buildApp } from 'fauxqs';
import { createClassifyDeps, makeClassifyHandler } from '../shared/aws/classify-handler.ts';
import { type AwsClients, createAwsClients, LOCAL_CREDENTIALS } from '../shared/aws/clients.ts';
import { DynamoResultsStore } from '../shared/aws/dynamo-results-store.ts';
import { createJobsService } from '../shared/aws/jobs-service.ts';
import { createPlanPorts } from '../shared/aws/plan-job.ts';
import { DynamoSchedules } from '../shared/aws/schedules-local.ts';
import { SqsBatchConsumer, type SqsHandler } from '../shared/aws/sqs-batch-consumer.ts';
import { jobsTableDefinition, resultsTableDefinition } from '../shared/aws/table-definitions.ts';
import type { WorkerConfig } from '../shared/config.ts';
import { ConfigError, type LabelerError } from '../shared/errors.ts';
import type { BatchReport, ClassifyLog } from '../shared/labeling/classify-records.ts';
import { type InvocationSizing, imageCostOf, sizeInvocation } from '../shared/labeling/invocation-budget.ts';
import type { JobsService } from '../shared/labeling/jobs.ts';
import { type PlanOptions, planStep } from '../shared/labeling/plan-job.ts';
import {
  defaultModelOf,
  MODEL_NAME_IN_STACK,
  modelNameOfDir,
  type StackModels,
} from '../shared/labeling/stack-models.ts';
import { type Manifest, readManifest } from '../shared/model/manifest.ts';
import { stderrDriftMetric, stderrLog } from '../shared/observability.ts';
import { DEFAULT_MODEL_DIR } from '../shared/paths.ts';
import {
  CLASSIFY,
  ENV,
  GPU_WORKER,
  IMAGE_LIMITS,
  JOB_IMAGES,
  JOBS,
  LABELING,
  modelQueueNames,
  RESOURCE_NAMES,
  UPLOAD_FILTER,
} from '../shared/settings.ts';
import { startDynamoDbLocal } from './dynamodb-local.ts';
import { ExecutionEnvironments } from './invoker.ts';
import { startQueryApiServer } from './query-api-server.ts';
import { emulateListEncoding, type S3ListHooks } from './s3-list-encoding.ts';
import { S3Notifier, type S3ServerHooks } from './s3-notifier.ts';
import { LocalScheduler } from './scheduler.ts';

export const LOCAL_REGION = 'us-east-1';
const TSX = import.meta.resolve('tsx');
const GPU_WORKER_ENTRY = fileURLToPath(new URL('../functions/gpu-worker/main.ts', import.meta.url));

/**
 * Two invocations in flight, each in its own execution environment (process), overlap
 * one batch's emulator I/O with another's decode and inference, each with one inference
 * thread so the two do not oversubscribe the cores (bench/RESULTS.md).
 */
export const LOCAL_DEFAULTS = { concurrency: 2, intraOpThreads: 1 } as const;

export interface LocalStackOptions {
  /** File-backed DynamoDB under this folder; in memory when absent. */
  readonly dataDir?: string;
  /** The one model of the stack: the same as `models: [{ dir: modelDir }]`. @default the bundled model */
  readonly modelDir?: string;
  /**
   * The models the stack hosts (decision 0037), each with its own jobs and bulk queues and
   * workers; a job names one, uploads get the default. A name defaults to the folder's.
   * @default [{ dir: modelDir }]
   */
  readonly models?: readonly LocalModel[];
  /** The name of the model uploads are labeled with. @default the first of `models` */
  readonly defaultModel?: string;
  /** Start the classify worker (event source mapping + handler). @default true */
  readonly worker?: boolean;
  /** @default CLASSIFY.visibilityTimeoutSeconds */
  readonly visibilityTimeoutSeconds?: number;
  /** @default CLASSIFY.maxReceiveCount */
  readonly maxReceiveCount?: number;
  /** @default sizeInvocation(imageCostOf(manifest)).uploadBatchSize */
  readonly batchSize?: number;
  /** @default CLASSIFY.maxBatchingWindowSeconds */
  readonly maxBatchingWindowMs?: number;
  /** @default CLASSIFY.timeoutSeconds */
  readonly functionTimeoutMs?: number;
  readonly intraOpThreads?: number;
  /** Classify invocations in flight at once for uploads (Lambda's concurrency). @default LOCAL_DEFAULTS.concurrency */
  readonly concurrency?: number;
  /**
   * Classify invocations in flight at once for the jobs queue, on top of `concurrency`: the
   * jobs queue's event source is a second mapping of the same function. @default `concurrency`
   */
  readonly jobsConcurrency?: number;
  /** @default sizeInvocation's jobBatchSize for the model */
  readonly jobsBatchSize?: number;
  /**
   * Buckets besides the images bucket that jobs may label (cdk.json's `readableBuckets` on
   * AWS). A job over any other bucket is refused at start. @default none
   */
  readonly readableBuckets?: readonly string[];
  /**
   * `process`: each invocation runs in an execution environment of its own (a child
   * process, local/invoker.ts), as on Lambda, so killing one harms nothing else.
   * `in-process`: the handler runs in this process, for tests that inject faults into
   * its SDK clients (`configureHandlerClients`). @default 'process'
   */
  readonly isolation?: 'process' | 'in-process';
  readonly log?: ClassifyLog;
  /** Tests: wraps the handler the event source mapping invokes (crash injection). */
  readonly wrapHandler?: (handler: SqsHandler) => SqsHandler;
  /** Tests, in-process only: adjusts the handler's own SDK clients (fault injection), never the stack's. */
  readonly configureHandlerClients?: (clients: AwsClients) => void;
  /** Consume the plan queue (labeling jobs' plan steps) in this process. @default worker */
  readonly planner?: boolean;
  /** Plan step sizes; tests use tiny pages. @default JOBS.pageSize, JOBS.stepBudgetMs */
  readonly planOptions?: Partial<PlanOptions>;
  /**
   * The finishing recount's sizes (decision 0027); tests: `inlineRecountMax: 0` sends every
   * job's recount through the plan queue in steps. @default JOBS.inlineRecountMax, 1 MB pages
   */
  readonly recount?: { readonly inlineRecountMax?: number; readonly recountPageLimit?: number };
  /**
   * Run the GPU worker's entry point (functions/gpu-worker/main.ts) on the bulk queue as a
   * child process with the CPU provider, so jobs with target `gpu` run on one machine. @default false
   */
  readonly gpuWorker?: boolean;
  /** The schedules' clock; tests pass one they move. @default () => new Date() */
  readonly now?: () => Date;
  /** How often due schedules are checked; 0: only when a caller ticks (tests). @default 5000 */
  readonly schedulePollMs?: number;
  /** @default GPU_WORKER.visibilityTimeoutSeconds */
  readonly bulkVisibilityTimeoutSeconds?: number;
}

/** A model of a local stack: its folder and its name in the stack. */
export interface LocalModel {
  readonly dir: string;
  /** @default modelNameOfDir(dir) */
  readonly name?: string;
}

/** One hosted model's queues. */
export interface ModelQueues {
  readonly jobs: QueueRef;
  readonly jobsDlq: QueueRef;
  readonly bulk: QueueRef;
  readonly bulkDlq: QueueRef;
}

export interface LocalEndpoints {
  readonly s3: string;
  readonly sqs: string;
  readonly dynamodb: string;
  /** The query API on loopback, SigV4-checked as API Gateway's IAM auth does (local/query-api-server.ts). */
  readonly queryApi: string;
}

export interface QueueRef {
  readonly url: string;
  readonly arn: string;
}

export interface LocalStack {
  readonly region: string;
  readonly endpoints: LocalEndpoints;
  readonly names: typeof RESOURCE_NAMES;
  /** The models the stack hosts, their queues and the default (decision 0037). */
  readonly models: StackModels;
  /** Each hosted model's queues, by name. */
  readonly modelQueues: Readonly<Record<string, ModelQueues>>;
  /** The shared queues, and the first model's jobs and bulk queues (a one-model stack's). */
  readonly queues: {
    readonly incoming: QueueRef;
    readonly incomingDlq: QueueRef;
    readonly jobs: QueueRef;
    readonly jobsDlq: QueueRef;
    readonly bulk: QueueRef;
    readonly bulkDlq: QueueRef;
    readonly plan: QueueRef;
    readonly planDlq: QueueRef;
  };
  /** Labeling jobs over this stack (decision 0014). */
  readonly jobs: JobsService;
  /** Job schedules, fired in this process (decision 0015). */
  readonly schedules: LocalScheduler;
  /** The first model's GPU worker process on its bulk queue, when `gpuWorker` is on. */
  readonly gpuWorker: ChildProcess | undefined;
  /** Every model's GPU worker process, by model name, when `gpuWorker` is on. */
  readonly gpuWorkers: Readonly<Record<string, ChildProcess>>;
  /** Clients for callers (CLI, tests); the handler has its own. */
  readonly clients: AwsClients;
  readonly notifier: S3Notifier;
  /** Buckets jobs may label: the images bucket, then `readableBuckets`. */
  readonly readableBuckets: readonly string[];
  /** The default model's classify function's event source on the incoming queue (uploads). */
  readonly mapping: SqsBatchConsumer | undefined;
  /** The first model's event source on its jobs queue (`lambda`-target job images). */
  readonly jobsMapping: SqsBatchConsumer | undefined;
  /** The default model's classify function's execution environments, when isolation is `process`. */
  readonly environments: ExecutionEnvironments | undefined;
  readonly dynamoDbPid: number | undefined;
  /** Settles with the error that leaves the stack unusable (DynamoDB Local exited); callers stop then. */
  readonly failed: Promise<LabelerError>;
  /** Called after every classify invocation with its report and the event it handled. */
  onReport(listener: (report: BatchReport, event: SQSEvent) => void): void;
  stop(): Promise<void>;
}

/**
 * The whole pipeline on one machine: fauxqs (S3 + SQS) and DynamoDB Local on 127.0.0.1,
 * the S3 → SQS notification, and the SQS event source mapping invoking the real
 * classify handler. Names and settings come from shared/settings.ts, as for the CDK stack.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  let stopping = false;
  const stop = async () => {
    for (const cleanup of cleanups.splice(0).reverse())
      await Promise.resolve(cleanup()).catch(() => undefined);
  };
  try {
    const dynamo = await startDynamoDbLocal(options.dataDir ? { dbPath: options.dataDir } : {});
    cleanups.push(() => dynamo.stop());

    const app = buildApp({ logger: false });
    const notifier = new S3Notifier(app as unknown as S3ServerHooks, LOCAL_REGION);
    emulateListEncoding(app as unknown as S3ListHooks);
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    cleanups.push(() => app.close());

    const endpoints = { s3: address, sqs: address, dynamodb: dynamo.endpoint };
    const clients = createAwsClients({ region: LOCAL_REGION, endpoints, local: true });
    cleanups.push(() => destroyClients(clients));
    notifier.connect(clients.sqs, async (bucket, key) => {
      const head = await clients.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { etag: head.ETag ?? '', contentLength: head.ContentLength ?? 0 };
    });

    const names = RESOURCE_NAMES;
    for (const bucket of [names.imagesBucket, names.resultsBucket]) {
      await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    }
    for (const definition of [
      resultsTableDefinition(names.resultsTable),
      jobsTableDefinition(names.jobsTable),
    ]) {
      await clients.dynamo.send(new CreateTableCommand(definition)).catch((error: unknown) => {
        if (!(error instanceof ResourceInUseException)) throw error;
      });
    }
    const maxReceiveCount = options.maxReceiveCount ?? CLASSIFY.maxReceiveCount;
    const incomingDlq = await createQueue(clients, names.incomingDlq, {});
    const incoming = await createQueue(clients, names.incomingQueue, {
      VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? CLASSIFY.visibilityTimeoutSeconds),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: incomingDlq.arn, maxReceiveCount }),
    });
    // Each model: its manifest, its sizing (as the deployed stack's event sources and
    // plan-job messages), its own jobs and bulk queues (decision 0037).
    const hostedModels = await resolveLocalModels(options);
    const modelQueues: Record<string, ModelQueues> = {};
    for (const [n, hosted] of hostedModels.entries()) {
      const queueNames = modelQueueNames(hosted.name, n === 0);
      const jobsDlq = await createQueue(clients, queueNames.jobsDlq, {});
      const jobs = await createQueue(clients, queueNames.jobsQueue, {
        VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? CLASSIFY.visibilityTimeoutSeconds),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: jobsDlq.arn, maxReceiveCount }),
      });
      const bulkDlq = await createQueue(clients, queueNames.bulkDlq, {});
      const bulk = await createQueue(clients, queueNames.bulkQueue, {
        VisibilityTimeout: String(
          options.bulkVisibilityTimeoutSeconds ?? GPU_WORKER.visibilityTimeoutSeconds,
        ),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: bulkDlq.arn,
          maxReceiveCount: GPU_WORKER.maxReceiveCount,
        }),
      });
      modelQueues[hosted.name] = { jobs, jobsDlq, bulk, bulkDlq };
    }
    const first = modelQueues[(hostedModels[0] as LocalHostedModel).name] as ModelQueues;
    const models: StackModels = {
      default: options.defaultModel ?? (hostedModels[0] as LocalHostedModel).name,
      models: hostedModels.map((m) => {
        const q = modelQueues[m.name] as ModelQueues;
        return {
          name: m.name,
          id: m.manifest.id,
          version: m.manifest.version,
          jobsQueueUrl: q.jobs.url,
          bulkQueueUrl: q.bulk.url,
          jobsDlqUrl: q.jobsDlq.url,
          bulkDlqUrl: q.bulkDlq.url,
          objectsPerMessage: m.sizing.objectsPerMessage,
          dir: m.dir,
        };
      }),
    };
    // A default the stack does not host stops the start, naming the ones it does.
    const defaultHosted = hostedModels.find(
      (m) => m.name === defaultModelOf(models).name,
    ) as LocalHostedModel;
    const model = { id: defaultHosted.manifest.id, version: defaultHosted.manifest.version };
    const planDlq = await createQueue(clients, names.planDlq, {});
    const plan = await createQueue(clients, names.planQueue, {
      VisibilityTimeout: String(JOBS.planVisibilityTimeoutSeconds),
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: planDlq.arn,
        maxReceiveCount: JOBS.planMaxReceiveCount,
      }),
    });
    const jobResources = {
      jobsTable: names.jobsTable,
      resultsTable: names.resultsTable,
      planQueueUrl: plan.url,
      models,
      readableBuckets: [names.imagesBucket, ...(options.readableBuckets ?? [])],
    };
    const jobs = createJobsService(clients, jobResources, LOCAL_REGION);
    await notifier.configure({
      id: 'labeler-incoming',
      bucket: names.imagesBucket,
      queueUrl: incoming.url,
      prefix: UPLOAD_FILTER.prefix,
      suffixes: UPLOAD_FILTER.suffixes,
    });

    const log = options.log ?? stderrLog;
    const queryApi = await startQueryApiServer({
      store: new DynamoResultsStore(clients.db, names.resultsTable),
      defaults: { bucket: names.imagesBucket, model, log },
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    cleanups.push(() => queryApi.close());
    await DynamoSchedules.createTable(clients.dynamo);
    const schedules = new LocalScheduler({
      store: new DynamoSchedules(clients.db, options.now ? { now: options.now } : {}),
      jobs,
      ...(options.now ? { now: options.now } : {}),
      ...(options.schedulePollMs === undefined ? {} : { pollMs: options.schedulePollMs }),
      log,
    });
    schedules.start();
    cleanups.push(() => schedules.stop());
    const listeners: Array<(report: BatchReport, event: SQSEvent) => void> = [];
    let mapping: SqsBatchConsumer | undefined;
    let jobsMapping: SqsBatchConsumer | undefined;
    let environments: ExecutionEnvironments | undefined;
    if (options.worker ?? true) {
      const isolation = options.isolation ?? 'process';
      if (isolation === 'process' && options.configureHandlerClients) {
        throw new ConfigError('configureHandlerClients needs isolation "in-process"');
      }
      const functionTimeoutMs = options.functionTimeoutMs ?? CLASSIFY.timeoutSeconds * 1000;
      const concurrency = options.concurrency ?? LOCAL_DEFAULTS.concurrency;
      const jobsConcurrency = options.jobsConcurrency ?? concurrency;
      const report = (r: BatchReport, event: SQSEvent) => {
        for (const listener of listeners) listener(r, event);
      };
      const onError = (error: unknown) =>
        log.warn('classify invocation failed; its batch will be retried', { error: String(error) });
      // One classify function per model, each with the model baked in (decision 0037): the
      // default's has two event sources (uploads, its jobs queue), the others' only their jobs queue.
      for (const hosted of hostedModels) {
        const isDefault = hosted === defaultHosted;
        const queues = modelQueues[hosted.name] as ModelQueues;
        const config: WorkerConfig = {
          region: LOCAL_REGION,
          resultsTable: names.resultsTable,
          resultsBucket: names.resultsBucket,
          modelDir: hosted.dir,
          executionProviders: ['cpu'],
          intraOpThreads: options.intraOpThreads ?? LOCAL_DEFAULTS.intraOpThreads,
          topK: LABELING.topK,
          batchSize: options.batchSize ?? CLASSIFY.batchSize,
          concurrency: 2,
          maxBytes: IMAGE_LIMITS.maxBytes,
          maxPixels: IMAGE_LIMITS.maxPixels,
          jobsTable: names.jobsTable,
          planQueueUrl: plan.url,
          ...options.recount,
          maxReceiveCount,
        };
        let handler: SqsHandler;
        if (isolation === 'process') {
          // One function, two event sources: environments are shared, up to both maxima together.
          // The uploads' share starts warm; the rest starts cold when both mappings are busy.
          const started = await ExecutionEnvironments.start({
            config,
            endpoints,
            size: (isDefault ? concurrency : 0) + jobsConcurrency,
            // Another model's function starts one environment: a model that cannot load stops the start.
            warm: isDefault ? concurrency : 1,
            timeoutMs: functionTimeoutMs,
            log,
            onReport: report,
          });
          if (isDefault) environments = started;
          cleanups.push(() => started.stop());
          handler = started.invoke;
        } else {
          const handlerClients = createAwsClients({ region: LOCAL_REGION, endpoints, local: true });
          cleanups.push(() => destroyClients(handlerClients));
          options.configureHandlerClients?.(handlerClients);
          // stdout is the CLI's JSON Lines: a finished schedule's drift metric goes to stderr.
          const deps = await createClassifyDeps(config, handlerClients, log, stderrDriftMetric);
          cleanups.push(() => deps.labeler.classifier.release());
          handler = makeClassifyHandler(deps, report);
        }
        const invoke = options.wrapHandler ? options.wrapHandler(handler) : handler;
        const started: SqsBatchConsumer[] = [];
        if (isDefault) {
          mapping = new SqsBatchConsumer({
            sqs: clients.sqs,
            queueUrl: incoming.url,
            queueArn: incoming.arn,
            region: LOCAL_REGION,
            handler: invoke,
            batchSize: options.batchSize ?? hosted.sizing.uploadBatchSize,
            maxBatchingWindowMs: options.maxBatchingWindowMs ?? CLASSIFY.maxBatchingWindowSeconds * 1000,
            functionTimeoutMs,
            concurrency,
            onError,
          });
          started.push(mapping);
        }
        const modelJobsMapping = new SqsBatchConsumer({
          sqs: clients.sqs,
          queueUrl: queues.jobs.url,
          queueArn: queues.jobs.arn,
          region: LOCAL_REGION,
          handler: invoke,
          batchSize: options.jobsBatchSize ?? hosted.sizing.jobBatchSize,
          maxBatchingWindowMs: options.maxBatchingWindowMs ?? JOB_IMAGES.maxBatchingWindowSeconds * 1000,
          functionTimeoutMs,
          concurrency: jobsConcurrency,
          onError,
        });
        if (hosted === hostedModels[0]) jobsMapping = modelJobsMapping;
        started.push(modelJobsMapping);
        for (const consumer of started) {
          consumer.start();
          cleanups.push(() => consumer.stop());
        }
      }
    }

    if (options.planner ?? options.worker ?? true) {
      const ports = createPlanPorts(clients, jobResources, LOCAL_REGION, {
        ...options.recount,
        driftMetric: stderrDriftMetric,
      });
      const planOptions: PlanOptions = {
        pageSize: options.planOptions?.pageSize ?? JOBS.pageSize,
        stepBudgetMs: options.planOptions?.stepBudgetMs ?? JOBS.stepBudgetMs,
        ...(options.planOptions?.maxPagesPerStep
          ? { maxPagesPerStep: options.planOptions.maxPagesPerStep }
          : {}),
        ...(options.planOptions?.recountPagesPerStep
          ? { recountPagesPerStep: options.planOptions.recountPagesPerStep }
          : {}),
      };
      // The plan-job function: batch size 1, one step at a time (as its reserved concurrency on AWS).
      const planner = new SqsBatchConsumer({
        sqs: clients.sqs,
        queueUrl: plan.url,
        queueArn: plan.arn,
        region: LOCAL_REGION,
        handler: async (event) => {
          const batchItemFailures: Array<{ itemIdentifier: string }> = [];
          for (const record of event.Records) {
            try {
              const outcome = await planStep(record.body, ports, planOptions);
              if (outcome.kind === 'recounted') log.info('finishing recount step', { ...outcome });
            } catch (error) {
              log.warn('plan step failed; it will be retried', { error: String(error) });
              batchItemFailures.push({ itemIdentifier: record.messageId });
            }
          }
          return { batchItemFailures };
        },
        batchSize: 1,
        maxBatchingWindowMs: 0,
        functionTimeoutMs: JOBS.planTimeoutSeconds * 1000,
        onError: (error) => log.warn('plan invocation failed; it will be retried', { error: String(error) }),
      });
      planner.start();
      cleanups.push(() => planner.stop());
    }

    const gpuWorkers: Record<string, ChildProcess> = {};
    // One GPU worker per model on its own bulk queue, as each model's ECS service on AWS.
    for (const hosted of options.gpuWorker ? hostedModels : []) {
      const { bulk } = modelQueues[hosted.name] as ModelQueues;
      const child = spawn(process.execPath, ['--import', TSX, GPU_WORKER_ENTRY], {
        // stdout belongs to the CLI's JSON Lines: the worker's logs go to stderr. It learns
        // this process's pid (ENV.localStackPid) and exits when that process is gone.
        stdio: ['ignore', 2, 'inherit'],
        // Out of the terminal's process group, like the stack's other children: the stack
        // stops it (SIGTERM, a drain) when Ctrl-C reaches the stack.
        detached: true,
        env: {
          ...process.env,
          [ENV.region]: LOCAL_REGION,
          [ENV.resultsTable]: names.resultsTable,
          [ENV.resultsBucket]: names.resultsBucket,
          [ENV.jobsTable]: names.jobsTable,
          [ENV.bulkQueueUrl]: bulk.url,
          [ENV.bulkQueueArn]: bulk.arn,
          [ENV.modelDir]: hosted.dir,
          [ENV.executionProviders]: 'cpu',
          [ENV.allowCpuFallback]: 'true',
          [ENV.intraOpThreads]: String(options.intraOpThreads ?? LOCAL_DEFAULTS.intraOpThreads),
          // Decode on every core, as the ECS task does: libuv sizes its pool (4 threads unless
          // told) only at start-up, so a machine with more cores must say so here.
          [ENV.uvThreadpoolSize]:
            process.env[ENV.uvThreadpoolSize] || String(Math.max(4, availableParallelism())),
          [ENV.ortDisableTelemetry]: '1',
          [ENV.localStackPid]: String(process.pid),
          // The SDK's own endpoint variables: the worker runs unchanged, as on ECS.
          AWS_ENDPOINT_URL_S3: endpoints.s3,
          AWS_ENDPOINT_URL_SQS: endpoints.sqs,
          AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
          AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        },
      });
      gpuWorkers[hosted.name] = child;
      child.once('exit', (code, signal) => {
        if (!stopping) {
          log.error('the GPU worker process exited', {
            model: hosted.name,
            code,
            signal: signal ?? undefined,
          });
        }
      });
      cleanups.push(async () => {
        stopping = true;
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      });
    }

    return {
      region: LOCAL_REGION,
      endpoints: { ...endpoints, queryApi: queryApi.url },
      names,
      models,
      modelQueues,
      queues: {
        incoming,
        incomingDlq,
        jobs: first.jobs,
        jobsDlq: first.jobsDlq,
        bulk: first.bulk,
        bulkDlq: first.bulkDlq,
        plan,
        planDlq,
      },
      jobs,
      schedules,
      gpuWorker: gpuWorkers[(hostedModels[0] as LocalHostedModel).name],
      gpuWorkers,
      clients,
      notifier,
      readableBuckets: jobResources.readableBuckets,
      mapping,
      jobsMapping,
      environments,
      dynamoDbPid: dynamo.pid,
      failed: dynamo.failed,
      onReport: (listener) => {
        listeners.push(listener);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

interface LocalHostedModel {
  readonly name: string;
  readonly dir: string;
  readonly manifest: Manifest;
  readonly sizing: InvocationSizing;
}

/** The stack's models with their manifests and sizing; a repeated name stops the start. */
async function resolveLocalModels(options: LocalStackOptions): Promise<LocalHostedModel[]> {
  const declared = options.models ?? [{ dir: options.modelDir ?? DEFAULT_MODEL_DIR }];
  if (declared.length === 0) throw new ConfigError('a local stack hosts at least one model');
  const models: LocalHostedModel[] = [];
  for (const { dir, name } of declared) {
    const manifest = await readManifest(dir);
    const hostedName = name ?? modelNameOfDir(dir);
    if (!MODEL_NAME_IN_STACK.test(hostedName)) {
      throw new ConfigError(`"${hostedName}" is not a model name in a stack (${MODEL_NAME_IN_STACK.source})`);
    }
    if (models.some((m) => m.name === hostedName)) {
      throw new ConfigError(
        `two models are named "${hostedName}"; name one of them (--model <name>=<folder>)`,
      );
    }
    // The same sizing as the deployed stack's event sources and plan-job messages.
    models.push({ name: hostedName, dir, manifest, sizing: sizeInvocation(imageCostOf(manifest)) });
  }
  return models;
}

async function createQueue(
  clients: AwsClients,
  name: string,
  attributes: Record<string, string>,
): Promise<QueueRef> {
  const created = await clients.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  const url = created.QueueUrl ?? '';
  const attrs = await clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  return { url, arn: attrs.Attributes?.QueueArn ?? '' };
}

function destroyClients(clients: AwsClients): void {
  clients.s3.destroy();
  clients.sqs.destroy();
  clients.dynamo.destroy();
}
