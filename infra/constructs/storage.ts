import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { JOBS_TABLE, RESULTS_TABLE, TABLE_WARM_THROUGHPUT, UPLOAD_FILTER } from '../../shared/settings.ts';

/** Construct id of the singleton handler that `Bucket.addEventNotification` adds to the stack. */
const BUCKET_NOTIFICATIONS_HANDLER_ID = 'BucketNotificationsHandler050a0587b7544547bf325f094a3db834';

export interface SecureBucketProps extends s3.BucketProps {}

/**
 * House defaults for every bucket: all public access blocked, SSL only, S3-managed
 * encryption, bucket-owner-enforced ownership, incomplete multipart uploads
 * aborted after a day, retained on stack deletion. Any prop can still be overridden.
 */
export class SecureBucket extends s3.Bucket {
  constructor(scope: Construct, id: string, props: SecureBucketProps = {}) {
    super(scope, id, {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: RemovalPolicy.RETAIN,
      ...props,
      lifecycleRules: [
        { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
        ...(props.lifecycleRules ?? []),
      ],
    });
  }
}

export interface StorageProps {
  /**
   * Queue that receives ObjectCreated events for keys matching UPLOAD_FILTER.
   * @default - no notifications
   */
  readonly uploadQueue?: sqs.IQueue;
  /**
   * What happens to buckets and tables when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Days server access logs are kept.
   * @default 90
   */
  readonly accessLogRetentionDays?: number;
  /**
   * Days a replaced or deleted image version is kept in the (versioned) images bucket.
   * @default 30
   */
  readonly noncurrentVersionRetentionDays?: number;
  /**
   * Write units per second each table (the results table's by-label index too) takes from
   * its first second (cdk.json `resultsTableWarmWrites`, `jobsTableWarmWrites`).
   * @default TABLE_WARM_THROUGHPUT
   */
  readonly warmWriteUnits?: { readonly results?: number; readonly jobs?: number };
}

/** Buckets (images, results, their access logs) and tables (results, jobs). */
export class Storage extends Construct {
  readonly accessLogsBucket: s3.Bucket;
  readonly imagesBucket: s3.Bucket;
  readonly resultsBucket: s3.Bucket;
  readonly resultsTable: dynamodb.Table;
  readonly jobsTable: dynamodb.Table;

  constructor(scope: Construct, id: string, props: StorageProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.accessLogsBucket = new SecureBucket(this, 'AccessLogs', {
      removalPolicy,
      // Server access log delivery supports SSE-S3 only and needs ACL-free ownership.
      lifecycleRules: [{ id: 'expire-logs', expiration: Duration.days(props.accessLogRetentionDays ?? 90) }],
    });
    Validations.of(this.accessLogsBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This bucket is the target of the server access logs; logging it into itself would loop.',
    });

    // Images are the one input nothing can rebuild: versioned, so an overwrite or delete
    // can be undone for 30 days (docs/decisions/0012-data-safety.md).
    this.imagesBucket = new SecureBucket(this, 'Images', {
      removalPolicy,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'images/',
      versioned: true,
      lifecycleRules: [
        {
          id: 'expire-replaced-images',
          noncurrentVersionExpiration: Duration.days(props.noncurrentVersionRetentionDays ?? 30),
          expiredObjectDeleteMarker: true,
        },
      ],
    });
    // Results are derived (images + model) and also in the PITR-protected table; every
    // batch writes a new key, so versioning would protect nothing. Older exports move to
    // Intelligent-Tiering, which costs nothing to read back.
    this.resultsBucket = new SecureBucket(this, 'Results', {
      removalPolicy,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'results/',
      lifecycleRules: [
        {
          id: 'tier-results',
          transitions: [
            { storageClass: s3.StorageClass.INTELLIGENT_TIERING, transitionAfter: Duration.days(30) },
          ],
        },
      ],
    });

    if (props.uploadQueue) {
      const destination = new s3n.SqsDestination(props.uploadQueue);
      const filters: s3.NotificationKeyFilter[] =
        UPLOAD_FILTER.suffixes.length === 0
          ? [{ prefix: UPLOAD_FILTER.prefix }]
          : UPLOAD_FILTER.suffixes.map((suffix) => ({ prefix: UPLOAD_FILTER.prefix, suffix }));
      for (const filter of filters) {
        this.imagesBucket.addEventNotification(s3.EventType.OBJECT_CREATED, destination, filter);
      }
      // addEventNotification creates one stack-level custom resource handler per stack.
      const handler = Stack.of(this).node.tryFindChild(BUCKET_NOTIFICATIONS_HANDLER_ID);
      if (handler) {
        Validations.of(handler).acknowledge(
          {
            id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
            reason:
              "CDK's bucket-notification custom resource handler (runs only at deploy time); its role is created by CDK with the basic execution managed policy and cannot be changed.",
          },
          {
            id: 'AwsSolutions-IAM5[Resource::*]',
            reason:
              "CDK's bucket-notification custom resource handler: s3:PutBucketNotification is granted on * by CDK; it runs only at deploy time.",
          },
        );
      }
    }

    const string = dynamodb.AttributeType.STRING;
    const warm = (writeUnitsPerSecond: number): dynamodb.WarmThroughput => ({
      readUnitsPerSecond: TABLE_WARM_THROUGHPUT.readUnitsPerSecond,
      writeUnitsPerSecond,
    });
    const resultsWarm = warm(
      props.warmWriteUnits?.results ?? TABLE_WARM_THROUGHPUT.resultsWriteUnitsPerSecond,
    );
    // Tables are retained on `cdk destroy` and named by CloudFormation: a fixed name on a
    // retained table made the next deploy of the same stack fail on "already exists"
    // (decision 0024). Processes find them through the stack outputs.
    this.resultsTable = new dynamodb.Table(this, 'ResultsTable', {
      partitionKey: { name: RESULTS_TABLE.partitionKey, type: string },
      sortKey: { name: RESULTS_TABLE.sortKey, type: string },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // RETAIN protects against `cdk destroy`; this protects against a console or CLI delete.
      deletionProtection: true,
      removalPolicy,
      warmThroughput: resultsWarm,
    });
    // A job's results are found through the jobs table, so the label index is the only one.
    const index = RESULTS_TABLE.labelIndex;
    this.resultsTable.addGlobalSecondaryIndex({
      indexName: index.name,
      partitionKey: { name: index.partitionKey, type: string },
      sortKey: { name: index.sortKey, type: string },
      projectionType: dynamodb.ProjectionType.ALL,
      warmThroughput: resultsWarm,
    });
    const rank2 = RESULTS_TABLE.rank2Index;
    this.resultsTable.addGlobalSecondaryIndex({
      indexName: rank2.name,
      partitionKey: { name: rank2.partitionKey, type: string },
      sortKey: { name: rank2.sortKey, type: string },
      projectionType: dynamodb.ProjectionType.INCLUDE,
      nonKeyAttributes: [...rank2.projection],
    });

    this.jobsTable = new dynamodb.Table(this, 'JobsTable', {
      partitionKey: { name: JOBS_TABLE.partitionKey, type: string },
      sortKey: { name: JOBS_TABLE.sortKey, type: string },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy,
      warmThroughput: warm(props.warmWriteUnits?.jobs ?? TABLE_WARM_THROUGHPUT.jobsWriteUnitsPerSecond),
    });
    // `jobs list`, newest first: only job items carry the index key.
    this.jobsTable.addGlobalSecondaryIndex({
      indexName: JOBS_TABLE.listIndex.name,
      partitionKey: { name: JOBS_TABLE.listIndex.partitionKey, type: string },
      sortKey: { name: JOBS_TABLE.listIndex.sortKey, type: string },
      projectionType: dynamodb.ProjectionType.ALL,
    });
  }
}
