import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ENV } from '../settings.ts';
import { type AwsCallRecorder, callRecorderFromEnv, recordCalls } from './call-recorder.ts';

export interface AwsClients {
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  readonly dynamo: DynamoDBClient;
  readonly db: DynamoDBDocumentClient;
}

export interface Endpoints {
  readonly s3?: string;
  readonly sqs?: string;
  readonly dynamodb?: string;
}

/** The static credentials every local-stack client signs with (the emulators accept any). */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

/**
 * Creates the SDK clients once per process. With no endpoints the SDK's own
 * resolution applies (AWS, or AWS_ENDPOINT_URL_* variables); the local stack passes
 * its 127.0.0.1 endpoints and static test credentials.
 */
export function createAwsClients(options: {
  region: string;
  endpoints?: Endpoints;
  local?: boolean;
  /** A named profile of the shared AWS config files (the CLI's --profile). */
  profile?: string;
  /**
   * Tests only: records every call (test/infra/iam-contract.test.ts). Without it, a process
   * started with LABELER_AWS_CALL_LOG set appends its calls to that file (call-recorder.ts).
   */
  recorder?: AwsCallRecorder;
}): AwsClients {
  const credentials = options.local ? LOCAL_CREDENTIALS : undefined;
  const common = {
    region: options.region,
    ...(credentials ? { credentials } : {}),
    ...(options.profile ? { profile: options.profile } : {}),
  };
  const s3 = new S3Client({
    ...common,
    // The SDK would otherwise ask S3 for each object's CRC64NVME and recompute it in
    // JavaScript, 2.7 ms of CPU per 550 KB image here (decision 0021); TLS already protects
    // the bytes in transit, and a damaged image fails to decode into a failed result.
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(options.endpoints?.s3 ? { endpoint: options.endpoints.s3, forcePathStyle: true } : {}),
  });
  const sqs = new SQSClient({
    ...common,
    ...(options.endpoints?.sqs ? { endpoint: options.endpoints.sqs } : {}),
    // An endpoint from AWS_ENDPOINT_URL_SQS (a GPU worker under the local stack) must win
    // over the queue URL's host, which an emulator may name unresolvably.
    ...(!options.endpoints?.sqs && process.env[ENV.sqsEndpointUrl] ? { useQueueUrlAsEndpoint: false } : {}),
  });
  const dynamo = new DynamoDBClient({
    ...common,
    ...(options.endpoints?.dynamodb ? { endpoint: options.endpoints.dynamodb } : {}),
  });
  const db = DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } });
  const recorder = options.recorder ?? callRecorderFromEnv();
  if (recorder) for (const client of [s3, sqs, dynamo]) recordCalls(client, recorder);
  return { s3, sqs, dynamo, db };
}
