import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';

/**
 * A statement naming exact DynamoDB actions on one table and, if given, exact
 * indexes. The L2 `grant*Data` helpers would add `index/*` and actions the
 * pipeline never calls (DeleteItem, Scan).
 */
export function tableStatement(
  table: dynamodb.ITable,
  actions: readonly `dynamodb:${string}`[],
  indexNames: readonly string[] = [],
): iam.PolicyStatement {
  return new iam.PolicyStatement({
    actions: [...actions],
    resources: [table.tableArn, ...indexNames.map((name) => `${table.tableArn}/index/${name}`)],
  });
}

/**
 * Object-level S3 access is granted on a key pattern (`bucket/prefix/*`): the keys
 * are not known in advance. cdk-nag reports each such resource as an
 * AwsSolutions-IAM5 finding; this acknowledges exactly that one resource on the
 * construct holding the policy.
 */
export function acknowledgeObjectPattern(
  holder: IConstruct,
  bucket: s3.IBucket,
  keyPattern: string,
  reason: string,
): void {
  const logicalId = Stack.of(bucket).getLogicalId(bucket.node.defaultChild as CfnElement);
  Validations.of(holder).acknowledge({
    id: `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>/${keyPattern}]`,
    reason,
  });
}

/**
 * A labeling principal reads the images of any key in every bucket the stack may label:
 * its images bucket (uploads under `images/`, jobs over any prefix) and cdk.json's
 * `readableBuckets`. Read-only: GetObject, nothing else. Jobs choose keys at run time, so
 * the grant is per bucket, `bucket/*`, and each such pattern is acknowledged for cdk-nag.
 */
export function grantImageReads(
  addToPolicy: (statement: iam.PolicyStatement) => void,
  holder: IConstruct,
  buckets: readonly s3.IBucket[],
): void {
  addToPolicy(
    new iam.PolicyStatement({
      actions: ['s3:GetObject'],
      resources: buckets.map((bucket) => bucket.arnForObjects('*')),
    }),
  );
  for (const bucket of buckets) {
    const reason =
      'Labels the images of uploads and of jobs, whose keys are chosen at run time under any prefix of a bucket the stack may label; GetObject only.';
    if (bucket.node.defaultChild) acknowledgeObjectPattern(holder, bucket, '*', reason);
    else
      Validations.of(holder).acknowledge({
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${bucket.bucketName}/*]`,
        reason,
      });
  }
}
