import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { ENV, type EnvName, lambdaVcpus } from '../../shared/settings.ts';
import type { LabelerImage } from '../image.ts';

export interface LabelerFunctionProps {
  /** The image the function runs (the `lambda` target of functions/Dockerfile). */
  readonly image: LabelerImage;
  /** Handler in the image, e.g. `functions/classify/handler.handler`; becomes the image CMD. */
  readonly handler: string;
  /** Powertools service name, also used in the description. */
  readonly serviceName: string;
  /**
   * Memory in MB.
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * Timeout.
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
  /**
   * Extra environment variables, by their names in ENV (shared/settings.ts). Variables
   * naming a resource are better set with the bind* helpers (env-binding.ts), which grant
   * access in the same call.
   * @default - LOG_LEVEL, POWERTOOLS_SERVICE_NAME and UV_THREADPOOL_SIZE only
   */
  readonly environment?: Readonly<Partial<Record<EnvName, string>>>;
  /**
   * Log level for the Powertools logger.
   * @default 'INFO'
   */
  readonly logLevel?: string;
  /**
   * How long the function's logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Reserved concurrency.
   * @default - unreserved
   */
  readonly reservedConcurrentExecutions?: number;
}

/**
 * House defaults for every Lambda function of the pipeline: the shared container
 * image with a CMD per handler, x86_64 (docs/decisions/0002-lambda-architecture.md),
 * an explicit log group with retention, and a role with no managed policies: it may
 * write to its own log group and nothing else until a construct grants more.
 */
export class LabelerFunction extends lambda.DockerImageFunction {
  /** Powertools service name: the `service` dimension of the metrics the function publishes. */
  readonly serviceName: string;

  constructor(scope: Construct, id: string, props: LabelerFunctionProps) {
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(scope, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of the ${props.serviceName} function`,
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    super(scope, id, {
      code: props.image.lambdaCode(props.handler),
      architecture: lambda.Architecture.X86_64,
      description: `Labeler ${props.serviceName}`,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(30),
      role,
      logGroup,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      environment: {
        [ENV.logLevel]: props.logLevel ?? 'INFO',
        [ENV.serviceName]: props.serviceName,
        // libuv sizes its pool (sharp decodes on it) once, when first used, which in an ES
        // module is before the handler's first line runs: only the environment can set it.
        [ENV.uvThreadpoolSize]: String(lambdaVcpus(props.memorySize ?? 512)),
        ...props.environment,
      },
    });
    this.serviceName = props.serviceName;
  }
}
