import { appendFileSync } from 'node:fs';

/**
 * Test instrumentation for the IAM contract (decision 0023): every AWS call a process makes,
 * with the resources it names, so test/infra/iam-contract.test.ts can ask whether the
 * synthesized template's policies allow it. Off unless a caller passes a recorder to
 * createAwsClients or a process is started with CALL_LOG_ENV.file set; when off, no
 * middleware is added at all. Infra never sets these variables.
 */
export const CALL_LOG_ENV = {
  /** File that each recorded call is appended to as one JSON line. */
  file: 'LABELER_AWS_CALL_LOG',
  /** Whose calls these are (e.g. `gpu-worker`); POWERTOOLS_SERVICE_NAME when unset. */
  principal: 'LABELER_AWS_PRINCIPAL',
} as const;

/** What one call names, before any mapping to IAM: S3 bucket and key, queue, table and index. */
export interface AwsCallResource {
  readonly bucket?: string;
  readonly key?: string;
  /** A queue by URL (most SQS calls) ... */
  readonly queueUrl?: string;
  /** ... by name (GetQueueUrl) ... */
  readonly queueName?: string;
  /** ... or by ARN (message move tasks). */
  readonly queueArn?: string;
  readonly table?: string;
  readonly index?: string;
  /**
   * The operation IAM authorises for this resource when it differs from the call's own:
   * a TransactWriteItems' Put, Update, Delete or ConditionCheck, a TransactGetItems' Get,
   * a message move task's destination.
   */
  readonly operation?: string;
}

export interface AwsCall {
  readonly principal: string;
  readonly service: string;
  /** The API operation, e.g. `GetObject`, `TransactWriteItems`. */
  readonly operation: string;
  readonly resources: readonly AwsCallResource[];
}

export interface AwsCallRecorder {
  readonly principal: string;
  record(call: AwsCall): void;
}

/** A recorder appending JSON lines to a file: processes started with CALL_LOG_ENV.file use it. */
export function fileCallRecorder(file: string, principal: string): AwsCallRecorder {
  return { principal, record: (call) => appendFileSync(file, `${JSON.stringify(call)}\n`) };
}

/** The recorder the environment asks for, if any. */
export function callRecorderFromEnv(env: NodeJS.ProcessEnv = process.env): AwsCallRecorder | undefined {
  const file = env[CALL_LOG_ENV.file];
  if (!file) return undefined;
  return fileCallRecorder(file, env[CALL_LOG_ENV.principal] || env.POWERTOOLS_SERVICE_NAME || 'unknown');
}

type Input = Record<string, unknown>;

const asRecord = (value: unknown): Input =>
  typeof value === 'object' && value !== null ? (value as Input) : {};

const TRANSACT_ACTIONS = {
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  ConditionCheck: 'ConditionCheckItem',
  Get: 'GetItem',
} as const;

/** The resources one call's input names. */
export function resourcesOfCall(service: string, input: Input): AwsCallResource[] {
  if (service === 's3') {
    if (typeof input.Bucket !== 'string') return [];
    return [{ bucket: input.Bucket, ...(typeof input.Key === 'string' ? { key: input.Key } : {}) }];
  }
  if (service === 'sqs') {
    if (typeof input.QueueUrl === 'string') return [{ queueUrl: input.QueueUrl }];
    if (typeof input.QueueName === 'string') return [{ queueName: input.QueueName }];
    const found: AwsCallResource[] = [];
    if (typeof input.SourceArn === 'string') found.push({ queueArn: input.SourceArn });
    if (typeof input.DestinationArn === 'string')
      found.push({ queueArn: input.DestinationArn, operation: 'SendMessage' });
    return found;
  }
  if (service === 'dynamodb') {
    if (typeof input.TableName === 'string') {
      return [
        {
          table: input.TableName,
          ...(typeof input.IndexName === 'string' ? { index: input.IndexName } : {}),
        },
      ];
    }
    if (Array.isArray(input.TransactItems)) {
      return input.TransactItems.flatMap((raw) =>
        Object.entries(asRecord(raw)).flatMap(([kind, item]) => {
          const table = asRecord(item).TableName;
          const action = TRANSACT_ACTIONS[kind as keyof typeof TRANSACT_ACTIONS];
          return typeof table === 'string' && action ? [{ table, operation: action }] : [];
        }),
      );
    }
    // BatchGetItem / BatchWriteItem: authorised per table as the batch operation itself.
    return Object.keys(asRecord(input.RequestItems)).map((table) => ({ table }));
  }
  return [];
}

/** The service a client's config names (`S3`, `SQS`, `DynamoDB`), as IAM spells it. */
function serviceOf(serviceId: unknown): string {
  const id = String(serviceId ?? '').toLowerCase();
  return id === 'dynamodb' ? 'dynamodb' : id;
}

interface RecordableClient {
  readonly config: { readonly serviceId?: unknown };
  readonly middlewareStack: {
    add(
      middleware: (
        next: (args: { input: object }) => Promise<unknown>,
        context: { commandName?: string },
      ) => (args: { input: object }) => Promise<unknown>,
      options: { step: 'initialize'; name: string; override: boolean },
    ): void;
  };
}

/**
 * Records each call this client makes, before it is sent: a call the code makes is in the
 * log even when the service refuses it. A DynamoDB document client shares its base
 * client's stack, so its calls are recorded once, with the base operation's name.
 */
export function recordCalls(client: RecordableClient, recorder: AwsCallRecorder): void {
  const service = serviceOf(client.config.serviceId);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = (context.commandName ?? 'Unknown').replace(/Command$/, '');
      recorder.record({
        principal: recorder.principal,
        service,
        operation,
        resources: resourcesOfCall(service, asRecord(args.input)),
      });
      return next(args);
    },
    { step: 'initialize', name: 'labelerCallRecorder', override: true },
  );
}
