import { RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ENV, RESULTS_TABLE } from '../../shared/settings.ts';
import { HANDLERS, type LabelerImage } from '../image.ts';
import { bindTable, lambdaWorkload } from './env-binding.ts';
import { LabelerFunction } from './labeler-function.ts';

/** HTTP API ($context) variables written per request. */
const ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  time: '$context.requestTime',
  routeKey: '$context.routeKey',
  path: '$context.path',
  status: '$context.status',
  latencyMs: '$context.responseLatency',
  caller: '$context.identity.userArn',
  sourceIp: '$context.identity.sourceIp',
  integrationError: '$context.integrationErrorMessage',
};

export interface QueryApiProps {
  readonly image: LabelerImage;
  readonly resultsTable: dynamodb.ITable;
  /** Queries name keys in this bucket unless they pass another. */
  readonly imagesBucket: s3.IBucket;
  /** The stack's hosted models (ENV.stackModels' JSON): queries default to the default model's results. */
  readonly stackModels: string;
  /**
   * Steady-state request rate limit of the API.
   * @default 50
   */
  readonly rateLimit?: number;
  /**
   * Burst limit of the API.
   * @default 100
   */
  readonly burstLimit?: number;
  /**
   * Log level.
   * @default 'INFO'
   */
  readonly logLevel?: string;
}

/**
 * The read-only query function behind an HTTP API whose every route requires
 * SigV4 (IAM) auth: results by image and by label (GSI by-label, one Query per
 * shard). Never a Scan.
 */
export class QueryApi extends Construct {
  readonly function: LabelerFunction;
  readonly api: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;

  constructor(scope: Construct, id: string, props: QueryApiProps) {
    super(scope, id);
    this.function = new LabelerFunction(this, 'Function', {
      image: props.image,
      handler: HANDLERS.query,
      serviceName: 'labeler-query',
      memorySize: 512,
      logLevel: props.logLevel,
      environment: {
        // The default bucket of image queries: a name only, the function never reads the bucket.
        [ENV.imagesBucket]: props.imagesBucket.bucketName,
        [ENV.stackModels]: props.stackModels,
      },
    });
    bindTable(
      lambdaWorkload(this.function),
      ENV.resultsTable,
      props.resultsTable,
      ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'],
      [RESULTS_TABLE.labelIndex.name, RESULTS_TABLE.rank2Index.name],
    );

    this.api = new apigwv2.HttpApi(this, 'Api', {
      description: 'Labeler query API (IAM auth)',
      createDefaultStage: false,
      defaultAuthorizer: new HttpIamAuthorizer(),
    });
    this.api.addRoutes({
      path: '/{proxy+}',
      methods: [apigwv2.HttpMethod.GET],
      integration: new HttpLambdaIntegration('Query', this.function),
    });

    const accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = this.api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.rateLimit ?? 50, burstLimit: props.burstLimit ?? 100 },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)),
      },
    });
  }

  /** The invoke URL of the default stage. */
  get url(): string {
    return this.stage.url;
  }
}
