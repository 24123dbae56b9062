import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetRoleCommand, IAMClient, NoSuchEntityException } from '@aws-sdk/client-iam';
import {
  GetAWSDefaultServiceQuotaCommand,
  GetServiceQuotaCommand,
  NoSuchResourceException,
  ServiceQuotasClient,
} from '@aws-sdk/client-service-quotas';
import type { AccountProbe, StackDescription } from '../ops/doctor.ts';

/** The doctor's account checks through the SDK; credentials and region resolve as the CLI's do. */
export async function createAccountProbe(options: { region?: string } = {}): Promise<AccountProbe> {
  const config = options.region ? { region: options.region } : {};
  const cloudFormation = new CloudFormationClient(config);
  const iam = new IAMClient(config);
  const quotas = new ServiceQuotasClient(config);
  const region = await cloudFormation.config.region();
  return {
    region,
    async describeStack(name: string): Promise<StackDescription | undefined> {
      try {
        const { Stacks } = await cloudFormation.send(new DescribeStacksCommand({ StackName: name }));
        const stack = Stacks?.[0];
        if (!stack) return undefined;
        return {
          status: stack.StackStatus ?? 'UNKNOWN',
          outputs: Object.fromEntries(
            (stack.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']),
          ),
        };
      } catch (error) {
        // CloudFormation answers a missing stack with a ValidationError, nothing more specific.
        if ((error as { name?: string }).name === 'ValidationError' && /does not exist/.test(String(error))) {
          return undefined;
        }
        throw error;
      }
    },
    async roleExists(roleName: string): Promise<boolean> {
      try {
        await iam.send(new GetRoleCommand({ RoleName: roleName }));
        return true;
      } catch (error) {
        if (error instanceof NoSuchEntityException) return false;
        throw error;
      }
    },
    async quota(serviceCode: string, quotaCode: string): Promise<number | undefined> {
      try {
        const { Quota } = await quotas.send(
          new GetServiceQuotaCommand({ ServiceCode: serviceCode, QuotaCode: quotaCode }),
        );
        return Quota?.Value;
      } catch (error) {
        // No value applied in this account yet: the AWS default applies.
        if (!(error instanceof NoSuchResourceException)) throw error;
        const { Quota } = await quotas.send(
          new GetAWSDefaultServiceQuotaCommand({ ServiceCode: serviceCode, QuotaCode: quotaCode }),
        );
        return Quota?.Value;
      }
    },
  };
}
