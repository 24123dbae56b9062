import { CreateTableCommand, ResourceInUseException } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { buildApp } from 'fauxqs';
import { createClassifyDeps, makeClassifyHandler } from '../shared/aws/classify-handler.ts';
import { type AwsClients, createAwsClients } from '../shared/aws/clients.ts';
import { SqsBatchConsumer, type SqsHandler } from '../shared/aws/sqs-batch-consumer.ts';
import { jobsTableDefinition, resultsTableDefinition } from '../shared/aws/table-definitions.ts';
import type { WorkerConfig } from '../shared/config.ts';
import { ConfigError, type LabelerError } from '../shared/errors.ts';
import type { BatchReport, ClassifyLog } from '../shared/labeling/classify-records.ts';
import { stderrLog } from '../shared/observability.ts';
import { DEFAULT_MODEL_DIR } from '../shared/paths.ts';
import {
  CLASSIFY,
  GPU_WORKER,
  IMAGE_LIMITS,
  LABELING,
  RESOURCE_NAMES,
  UPLOAD_FILTER,
} from '../shared/settings.ts';
import { startDynamoDbLocal } from './dynamodb-local.ts';
import { ExecutionEnvironments } from './invoker.ts';
import { S3Notifier, type S3ServerHooks } from './s3-notifier.ts';

export const LOCAL_REGION = 'us-east-1';

/**
 * Two invocations in flight, each in its own execution environment (process), overlap
 * one batch's emulator I/O with another's decode and inference, each with one inference
 * thread so the two do not oversubscribe the cores (bench/RESULTS.md).
 */
export const LOCAL_DEFAULTS = { concurrency: 2, intraOpThreads: 1 } as const;

export interface LocalStackOptions {
  /** File-backed DynamoDB under this folder; in memory when absent. */
  readonly dataDir?: string;
  readonly modelDir?: string;
  /** Start the classify worker (event source mapping + handler). @default true */
  readonly worker?: boolean;
  /** @default CLASSIFY.visibilityTimeoutSeconds */
  readonly visibilityTimeoutSeconds?: number;
  /** @default CLASSIFY.maxReceiveCount */
  readonly maxReceiveCount?: number;
  /** @default CLASSIFY.batchSize */
  readonly batchSize?: number;
  /** @default CLASSIFY.maxBatchingWindowSeconds */
  readonly maxBatchingWindowMs?: number;
  /** @default CLASSIFY.timeoutSeconds */
  readonly functionTimeoutMs?: number;
  readonly intraOpThreads?: number;
  /** Classify invocations in flight at once (Lambda's concurrency). @default LOCAL_DEFAULTS.concurrency */
  readonly concurrency?: number;
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
}

export interface QueueRef {
  readonly url: string;
  readonly arn: string;
}

export interface LocalStack {
  readonly region: string;
  readonly endpoints: { readonly s3: string; readonly sqs: string; readonly dynamodb: string };
  readonly names: typeof RESOURCE_NAMES;
  readonly queues: {
    readonly incoming: QueueRef;
    readonly incomingDlq: QueueRef;
    readonly bulk: QueueRef;
    readonly bulkDlq: QueueRef;
  };
  /** Clients for callers (CLI, tests); the handler has its own. */
  readonly clients: AwsClients;
  readonly notifier: S3Notifier;
  readonly mapping: SqsBatchConsumer | undefined;
  /** The classify function's execution environments, when isolation is `process`. */
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
  const stop = async () => {
    for (const cleanup of cleanups.splice(0).reverse())
      await Promise.resolve(cleanup()).catch(() => undefined);
  };
  try {
    const dynamo = await startDynamoDbLocal(options.dataDir ? { dbPath: options.dataDir } : {});
    cleanups.push(() => dynamo.stop());

    const app = buildApp({ logger: false });
    const notifier = new S3Notifier(app as unknown as S3ServerHooks, LOCAL_REGION);
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
    const bulkDlq = await createQueue(clients, names.bulkDlq, {});
    const bulk = await createQueue(clients, names.bulkQueue, {
      VisibilityTimeout: String(GPU_WORKER.visibilityTimeoutSeconds),
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: bulkDlq.arn,
        maxReceiveCount: GPU_WORKER.maxReceiveCount,
      }),
    });
    await notifier.configure({
      id: 'labeler-incoming',
      bucket: names.imagesBucket,
      queueUrl: incoming.url,
      prefix: UPLOAD_FILTER.prefix,
      suffixes: UPLOAD_FILTER.suffixes,
    });

    const listeners: Array<(report: BatchReport, event: SQSEvent) => void> = [];
    let mapping: SqsBatchConsumer | undefined;
    let environments: ExecutionEnvironments | undefined;
    if (options.worker ?? true) {
      const isolation = options.isolation ?? 'process';
      if (isolation === 'process' && options.configureHandlerClients) {
        throw new ConfigError('configureHandlerClients needs isolation "in-process"');
      }
      const log = options.log ?? stderrLog;
      const config: WorkerConfig = {
        region: LOCAL_REGION,
        resultsTable: names.resultsTable,
        resultsBucket: names.resultsBucket,
        modelDir: options.modelDir ?? DEFAULT_MODEL_DIR,
        executionProviders: ['cpu'],
        intraOpThreads: options.intraOpThreads ?? LOCAL_DEFAULTS.intraOpThreads,
        topK: LABELING.topK,
        batchSize: options.batchSize ?? CLASSIFY.batchSize,
        concurrency: 2,
        maxBytes: IMAGE_LIMITS.maxBytes,
        maxPixels: IMAGE_LIMITS.maxPixels,
      };
      const functionTimeoutMs = options.functionTimeoutMs ?? CLASSIFY.timeoutSeconds * 1000;
      const concurrency = options.concurrency ?? LOCAL_DEFAULTS.concurrency;
      const report = (r: BatchReport, event: SQSEvent) => {
        for (const listener of listeners) listener(r, event);
      };
      let handler: SqsHandler;
      if (isolation === 'process') {
        const started = await ExecutionEnvironments.start({
          config,
          endpoints,
          size: concurrency,
          timeoutMs: functionTimeoutMs,
          log,
          onReport: report,
        });
        environments = started;
        cleanups.push(() => started.stop());
        handler = started.invoke;
      } else {
        const handlerClients = createAwsClients({ region: LOCAL_REGION, endpoints, local: true });
        cleanups.push(() => destroyClients(handlerClients));
        options.configureHandlerClients?.(handlerClients);
        const deps = await createClassifyDeps(config, handlerClients, log);
        cleanups.push(() => deps.labeler.classifier.release());
        handler = makeClassifyHandler(deps, report);
      }
      mapping = new SqsBatchConsumer({
        sqs: clients.sqs,
        queueUrl: incoming.url,
        queueArn: incoming.arn,
        region: LOCAL_REGION,
        handler: options.wrapHandler ? options.wrapHandler(handler) : handler,
        batchSize: options.batchSize ?? CLASSIFY.batchSize,
        maxBatchingWindowMs: options.maxBatchingWindowMs ?? CLASSIFY.maxBatchingWindowSeconds * 1000,
        functionTimeoutMs,
        concurrency,
        onError: (error) =>
          log.warn('classify invocation failed; its batch will be retried', { error: String(error) }),
      });
      const started = mapping;
      started.start();
      cleanups.push(() => started.stop());
    }

    return {
      region: LOCAL_REGION,
      endpoints,
      names,
      queues: { incoming, incomingDlq, bulk, bulkDlq },
      clients,
      notifier,
      mapping,
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
