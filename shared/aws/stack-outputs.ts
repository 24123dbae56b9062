import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import { toLabelerError } from './errors.ts';

/** The outputs of a deployed stack, by output key (infra/labeler-stack.ts declares them). */
export interface StackOutputs {
  readonly stackName: string;
  readonly region: string;
  get(key: string): string;
}

/**
 * Reads a deployed stack's CloudFormation outputs: the one place the CLI learns the
 * physical names (queues, tables, schedule group, roles) of `--stack <name>`.
 */
export async function readStackOutputs(
  stackName: string,
  options: {
    readonly region?: string;
    readonly profile?: string;
    readonly endpoint?: string;
    readonly client?: CloudFormationClient;
  } = {},
): Promise<StackOutputs> {
  const client =
    options.client ??
    new CloudFormationClient({
      ...(options.region ? { region: options.region } : {}),
      ...(options.profile ? { profile: options.profile } : {}),
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    });
  try {
    const response = await client
      .send(new DescribeStacksCommand({ StackName: stackName }))
      .catch((error: unknown) => {
        const e = error as { name?: string; message?: string };
        // CloudFormation answers an unknown stack with a 400 ValidationError "does not exist".
        if (e.name === 'ValidationError' && /does not exist/.test(e.message ?? '')) {
          throw new LabelerError(
            CODE.stack.notFound,
            `stack ${stackName} does not exist in this account and region`,
          );
        }
        throw toLabelerError(error, `CloudFormation DescribeStacks ${stackName}`);
      });
    const stack = response.Stacks?.[0];
    if (!stack) throw new LabelerError(CODE.stack.notFound, `stack ${stackName} does not exist`);
    const outputs = new Map<string, string>();
    for (const output of stack.Outputs ?? []) {
      if (output.OutputKey && output.OutputValue !== undefined)
        outputs.set(output.OutputKey, output.OutputValue);
    }
    const region = await client.config.region();
    return {
      stackName,
      region,
      get(key) {
        const value = outputs.get(key);
        if (value === undefined) {
          throw new LabelerError(
            CODE.stack.missingOutput,
            `stack ${stackName} has no output ${key} (status ${stack.StackStatus}); deploy this version of the stack`,
          );
        }
        return value;
      },
    };
  } finally {
    if (!options.client) client.destroy();
  }
}
