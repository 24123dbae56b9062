import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { IConstruct } from 'constructs';
import type { EnvName } from '../../shared/settings.ts';
import { acknowledgeObjectPattern, tableStatement } from './grants.ts';

/**
 * A process the stack configures: a Lambda function or an ECS container. Variables are
 * typed by ENV (shared/settings.ts), so a name the code does not read cannot be set, and
 * a resource's permissions are granted in the same call that names it to the process.
 */
export interface Workload {
  /** The construct cdk-nag findings about this workload's policy are acknowledged on. */
  readonly policyHolder: IConstruct;
  setEnv(name: EnvName, value: string): void;
  allow(statement: iam.PolicyStatement): void;
}

export function lambdaWorkload(fn: lambda.Function): Workload {
  return {
    policyHolder: fn.role ?? fn,
    setEnv: (name, value) => fn.addEnvironment(name, value),
    allow: (statement) => fn.addToRolePolicy(statement),
  };
}

export function containerWorkload(
  taskDefinition: ecs.TaskDefinition,
  container: ecs.ContainerDefinition,
): Workload {
  return {
    policyHolder: taskDefinition,
    setEnv: (name, value) => container.addEnvironment(name, value),
    allow: (statement) => taskDefinition.addToTaskRolePolicy(statement),
  };
}

/** Names a table to the workload and allows exactly these actions on it (and these indexes). */
export function bindTable(
  workload: Workload,
  name: EnvName,
  table: dynamodb.ITable,
  actions: readonly `dynamodb:${string}`[],
  indexNames: readonly string[] = [],
): void {
  workload.setEnv(name, table.tableName);
  workload.allow(tableStatement(table, actions, indexNames));
}

/** Names a bucket to the workload and allows these object actions under one key pattern. */
export function bindBucketObjects(
  workload: Workload,
  name: EnvName,
  bucket: s3.IBucket,
  actions: readonly `s3:${string}`[],
  keyPattern: string,
  reason: string,
): void {
  workload.setEnv(name, bucket.bucketName);
  workload.allow(
    new iam.PolicyStatement({ actions: [...actions], resources: [bucket.arnForObjects(keyPattern)] }),
  );
  acknowledgeObjectPattern(workload.policyHolder, bucket, keyPattern, reason);
}

/** Names a queue (URL, and ARN if asked) to the workload with exactly these queue actions. */
export function bindQueue(
  workload: Workload,
  names: { readonly url: EnvName; readonly arn?: EnvName },
  queue: sqs.IQueue,
  actions: readonly `sqs:${string}`[],
): void {
  workload.setEnv(names.url, queue.queueUrl);
  if (names.arn) workload.setEnv(names.arn, queue.queueArn);
  workload.allow(new iam.PolicyStatement({ actions: [...actions], resources: [queue.queueArn] }));
}
