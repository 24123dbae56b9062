/**
 * The IAM contract (decision 0023): recorded AWS calls (shared/aws/call-recorder.ts) mapped
 * to IAM requests, and each request evaluated against the synthesized template's policies
 * with @cloud-copilot/iam-simulate. Tests only: the evaluator is AGPL-3.0 and a
 * devDependency; nothing under shared/, functions/, cli/, infra/ may import this module.
 */
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import type { AwsCall, AwsCallResource } from '../../shared/aws/call-recorder.ts';
import { RESOURCE_NAMES } from '../../shared/settings.ts';

export const ACCOUNT = '111122223333';
export const REGION = 'us-east-1';
const PARTITION = 'aws';

type Json = Record<string, unknown>;
interface CfnResource {
  readonly Type: string;
  readonly Properties?: Json;
}
export interface TemplateJson {
  readonly Resources: Record<string, CfnResource>;
}

/** One request IAM authorises: what a recorded call needs, in IAM's words. */
export interface IamRequest {
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  /** The call it came from, for failure messages: `GetObject s3://bucket/key`. */
  readonly call: string;
}

export interface Decision {
  readonly request: IamRequest;
  readonly result: string;
}

/** A principal the contract checks: its ARN and identity policies. */
export interface Principal {
  readonly name: string;
  readonly arn: string;
  readonly identityPolicies: readonly { name: string; policy: Json }[];
}

/**
 * Which RESOURCE_NAMES key each bucket and table of the stack is: CloudFormation names them
 * (none is given a name, so a destroyed stack's retained ones never block a redeploy).
 */
export type UnnamedLogicalIds = Partial<Record<keyof typeof RESOURCE_NAMES, string>>;

/**
 * The synthesized template with every intrinsic resolved against a fixed account, region
 * and partition, and the local stack's names (RESOURCE_NAMES) mapped to its resources.
 */
export class ResolvedTemplate {
  readonly #template: TemplateJson;
  readonly #stackName: string;
  readonly #bucketNames: Map<string, string>;
  readonly #bucketKeys: UnnamedLogicalIds;

  constructor(template: TemplateJson, stackName: string, buckets: UnnamedLogicalIds) {
    this.#template = template;
    this.#stackName = stackName;
    this.#bucketKeys = buckets;
    // Buckets get a generated name; the contract gives each the lower-cased logical id.
    this.#bucketNames = new Map(
      Object.keys(this.resourcesOf('AWS::S3::Bucket')).map((id) => [id, id.toLowerCase()]),
    );
    // Local names can repeat across kinds (labeler-results is a bucket and a table).
    const byLocalName = (type: string) =>
      new Map(
        Object.entries(buckets).flatMap(([key, id]) => {
          const r = this.#template.Resources[id];
          if (!r) throw new Error(`${key}: no resource ${id} in the template`);
          return r.Type === type
            ? [[RESOURCE_NAMES[key as keyof typeof RESOURCE_NAMES], this.#physicalName(id)]]
            : [];
        }),
      );
    this.#localBuckets = byLocalName('AWS::S3::Bucket');
    this.#localTables = byLocalName('AWS::DynamoDB::Table');
  }

  readonly #localBuckets: Map<string, string>;
  readonly #localTables: Map<string, string>;

  resourcesOf(type: string): Record<string, CfnResource> {
    return Object.fromEntries(Object.entries(this.#template.Resources).filter(([, r]) => r.Type === type));
  }

  #resource(id: string): CfnResource {
    const r = this.#template.Resources[id];
    if (!r) throw new Error(`template has no resource ${id}`);
    return r;
  }

  #physicalName(id: string): string {
    const r = this.#resource(id);
    const props = r.Properties ?? {};
    if (r.Type === 'AWS::SQS::Queue') return this.resolve(props.QueueName ?? id) as string;
    if (r.Type === 'AWS::DynamoDB::Table') return this.resolve(props.TableName ?? id) as string;
    if (r.Type === 'AWS::S3::Bucket') return this.#bucketNames.get(id) ?? id.toLowerCase();
    return id;
  }

  #ref(id: string): unknown {
    const pseudo: Record<string, string> = {
      'AWS::Partition': PARTITION,
      'AWS::Region': REGION,
      'AWS::AccountId': ACCOUNT,
      'AWS::URLSuffix': 'amazonaws.com',
      'AWS::StackName': this.#stackName,
    };
    if (id in pseudo) return pseudo[id];
    const r = this.#resource(id);
    if (r.Type === 'AWS::SQS::Queue')
      return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${this.#physicalName(id)}`;
    return this.#physicalName(id);
  }

  #getAtt(id: string, attribute: string): string {
    const r = this.#resource(id);
    const name = this.#physicalName(id);
    if (attribute === 'Arn') {
      switch (r.Type) {
        case 'AWS::SQS::Queue':
          return `arn:${PARTITION}:sqs:${REGION}:${ACCOUNT}:${name}`;
        case 'AWS::DynamoDB::Table':
          return `arn:${PARTITION}:dynamodb:${REGION}:${ACCOUNT}:table/${name}`;
        case 'AWS::S3::Bucket':
          return `arn:${PARTITION}:s3:::${name}`;
        case 'AWS::IAM::Role':
          return this.roleArn(id);
        case 'AWS::Logs::LogGroup':
          return `arn:${PARTITION}:logs:${REGION}:${ACCOUNT}:log-group:${name}:*`;
        default:
          // A resource no recorded call touches (a log stream, an ECR repository): any valid ARN.
          return `arn:${PARTITION}:cloudformation:${REGION}:${ACCOUNT}:unresolved/${id}`;
      }
    }
    if (r.Type === 'AWS::SQS::Queue' && attribute === 'QueueName') return name;
    if (r.Type === 'AWS::SQS::Queue' && attribute === 'QueueUrl') return this.#ref(id) as string;
    return `unresolved-${id}-${attribute}`;
  }

  /** The value of a template expression: Ref, Fn::GetAtt, Fn::Join, Fn::Select, Fn::Split, Fn::Sub. */
  resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (typeof value !== 'object' || value === null) return value;
    const v = value as Json;
    const keys = Object.keys(v);
    if (keys.length === 1) {
      const [fn] = keys as [string];
      const arg = v[fn];
      if (fn === 'Ref') return this.#ref(String(arg));
      if (fn === 'Fn::GetAtt') {
        const [id, attribute] = (typeof arg === 'string' ? arg.split('.') : arg) as [string, string];
        return this.#getAtt(id, attribute);
      }
      if (fn === 'Fn::Join') {
        const [sep, parts] = arg as [string, unknown[]];
        return parts.map((p) => String(this.resolve(p))).join(sep);
      }
      if (fn === 'Fn::Select') {
        const [index, list] = arg as [number | string, unknown];
        return (this.resolve(list) as unknown[])[Number(index)];
      }
      if (fn === 'Fn::Split') {
        const [sep, source] = arg as [string, unknown];
        return String(this.resolve(source)).split(sep);
      }
      if (fn === 'Fn::Sub' && typeof arg === 'string') {
        return arg.replace(/\$\{([^}]+)\}/g, (_, name: string) =>
          String(
            name.includes('.') ? this.#getAtt(...(name.split('.') as [string, string])) : this.#ref(name),
          ),
        );
      }
    }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.resolve(x)]));
  }

  roleArn(roleId: string): string {
    return `arn:${PARTITION}:iam::${ACCOUNT}:role/${roleId}`;
  }

  /** A role's identity policies: its inline Policies and every AWS::IAM::Policy attached to it. */
  principalOfRole(name: string, roleId: string): Principal {
    const role = this.#resource(roleId);
    if (role.Type !== 'AWS::IAM::Role') throw new Error(`${roleId} is a ${role.Type}, not a role`);
    const managed = (role.Properties?.ManagedPolicyArns as unknown[] | undefined) ?? [];
    if (managed.length > 0) {
      throw new Error(`${name}: role ${roleId} has managed policies, which this contract cannot read`);
    }
    const inline = ((role.Properties?.Policies as Json[] | undefined) ?? []).map((p) => ({
      name: String(p.PolicyName),
      policy: this.resolve(p.PolicyDocument) as Json,
    }));
    const attached = Object.entries(this.resourcesOf('AWS::IAM::Policy'))
      .filter(([, p]) => ((p.Properties?.Roles as unknown[]) ?? []).some((r) => (r as Json).Ref === roleId))
      .map(([id, p]) => ({ name: id, policy: this.resolve(p.Properties?.PolicyDocument) as Json }));
    return { name, arn: this.roleArn(roleId), identityPolicies: [...inline, ...attached] };
  }

  /** The resource policy that governs an ARN: its bucket's, its queue's, its table's; undefined if none. */
  resourcePolicyFor(arn: string): Json | undefined {
    if (arn.startsWith(`arn:${PARTITION}:s3:::`)) {
      const bucket = arn.slice(`arn:${PARTITION}:s3:::`.length).split('/')[0];
      for (const p of Object.values(this.resourcesOf('AWS::S3::BucketPolicy'))) {
        if (this.resolve(p.Properties?.Bucket) === bucket)
          return this.resolve(p.Properties?.PolicyDocument) as Json;
      }
      return undefined;
    }
    if (arn.startsWith(`arn:${PARTITION}:sqs:`)) {
      const url = `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${arn.split(':').at(-1)}`;
      const statements = Object.values(this.resourcesOf('AWS::SQS::QueuePolicy'))
        .filter((p) => (this.resolve(p.Properties?.Queues) as unknown[]).includes(url))
        .flatMap((p) => (this.resolve(p.Properties?.PolicyDocument) as { Statement: unknown[] }).Statement);
      return statements.length > 0 ? { Version: '2012-10-17', Statement: statements } : undefined;
    }
    if (arn.startsWith(`arn:${PARTITION}:dynamodb:`)) {
      const table = arn.split(':').at(-1)?.split('/')[1];
      for (const [id, t] of Object.entries(this.resourcesOf('AWS::DynamoDB::Table'))) {
        const policy = (t.Properties?.ResourcePolicy as Json | undefined)?.PolicyDocument;
        if (policy && this.#physicalName(id) === table) return this.resolve(policy) as Json;
      }
      return undefined;
    }
    if (arn.startsWith(`arn:${PARTITION}:kms:`)) {
      const keyId = arn.split('/').at(-1) ?? '';
      const key = this.#template.Resources[keyId];
      return key?.Type === 'AWS::KMS::Key' ? (this.resolve(key.Properties?.KeyPolicy) as Json) : undefined;
    }
    return undefined;
  }

  /** Queues and tables whose template name is `<stack>-<RESOURCE_NAMES value>`, by local name. */
  #named(type: 'AWS::SQS::Queue' | 'AWS::DynamoDB::Table', local: string): string | undefined {
    const wanted = `${this.#stackName}-${local}`;
    for (const id of Object.keys(this.resourcesOf(type))) {
      if (this.#physicalName(id) === wanted) return wanted;
    }
    return undefined;
  }

  /** Every RESOURCE_NAMES entry with the template resource it maps to; undefined where none does. */
  localNames(): Record<string, string | undefined> {
    return Object.fromEntries(
      Object.entries(RESOURCE_NAMES).map(([key, local]) => [
        key,
        key in this.#bucketKeys
          ? this.#physicalName(this.#bucketKeys[key as keyof UnnamedLogicalIds] as string)
          : (this.#named('AWS::SQS::Queue', local) ?? this.#named('AWS::DynamoDB::Table', local)),
      ]),
    );
  }

  // A name the stack does not own (another bucket, another table) keeps its own name.
  bucketArn(local: string): string {
    return `arn:${PARTITION}:s3:::${this.#localBuckets.get(local) ?? local}`;
  }
  queueArn(local: string): string {
    const name = this.#named('AWS::SQS::Queue', local) ?? local;
    return `arn:${PARTITION}:sqs:${REGION}:${ACCOUNT}:${name}`;
  }
  tableArn(local: string): string {
    const name = this.#localTables.get(local) ?? this.#named('AWS::DynamoDB::Table', local) ?? local;
    return `arn:${PARTITION}:dynamodb:${REGION}:${ACCOUNT}:table/${name}`;
  }

  /** The queue whose dead-letter queue this is (a message move task's default destination). */
  sourceOfDeadLetterQueue(dlqArn: string): string | undefined {
    for (const [id, q] of Object.entries(this.resourcesOf('AWS::SQS::Queue'))) {
      const redrive = q.Properties?.RedrivePolicy as Json | undefined;
      if (redrive && this.resolve(redrive.deadLetterTargetArn) === dlqArn) return this.#getAtt(id, 'Arn');
    }
    return undefined;
  }
}

const S3_OBJECT_ACTIONS: Record<string, string> = {
  GetObject: 's3:GetObject',
  HeadObject: 's3:GetObject',
  PutObject: 's3:PutObject',
  CreateMultipartUpload: 's3:PutObject',
  UploadPart: 's3:PutObject',
  CompleteMultipartUpload: 's3:PutObject',
  AbortMultipartUpload: 's3:AbortMultipartUpload',
  ListParts: 's3:ListMultipartUploadParts',
  DeleteObject: 's3:DeleteObject',
};
const S3_BUCKET_ACTIONS: Record<string, string> = {
  ListObjectsV2: 's3:ListBucket',
  ListObjects: 's3:ListBucket',
  HeadBucket: 's3:ListBucket',
  ListMultipartUploads: 's3:ListBucketMultipartUploads',
};

const queueNameOf = (r: AwsCallResource): string =>
  r.queueName ?? (r.queueUrl ? (r.queueUrl.split('/').at(-1) ?? '') : (r.queueArn?.split(':').at(-1) ?? ''));

/**
 * The IAM requests one recorded call needs. Throws for an operation it cannot map, so a new
 * kind of call fails the contract until someone says what IAM checks for it.
 */
export function requestsOf(call: AwsCall, template: ResolvedTemplate): IamRequest[] {
  const { principal, service, operation } = call;
  const requests: IamRequest[] = [];
  const add = (action: string, resource: string, what: string) =>
    requests.push({ principal, action, resource, call: `${operation} ${what}` });
  if (call.resources.length === 0) throw new Error(`${principal}: ${service} ${operation} names no resource`);
  for (const r of call.resources) {
    if (service === 's3') {
      const bucket = template.bucketArn(r.bucket ?? '');
      const objectAction = S3_OBJECT_ACTIONS[operation];
      const bucketAction = S3_BUCKET_ACTIONS[operation];
      if (objectAction && r.key !== undefined)
        add(objectAction, `${bucket}/${r.key}`, `s3://${r.bucket}/${r.key}`);
      else if (bucketAction) add(bucketAction, bucket, `s3://${r.bucket}`);
      else throw new Error(`${principal}: no IAM mapping for s3 ${operation}`);
    } else if (service === 'sqs') {
      const name = queueNameOf(r);
      const arn = template.queueArn(name);
      if (operation === 'StartMessageMoveTask') {
        if (r.operation === 'SendMessage') {
          add('sqs:SendMessage', arn, `destination ${name}`);
          continue;
        }
        // SQS moves the messages as the caller: it reads and deletes them from the DLQ and
        // sends them to the source queue (SQS developer guide, dead-letter queue redrive).
        for (const action of [
          'StartMessageMoveTask',
          'ReceiveMessage',
          'DeleteMessage',
          'GetQueueAttributes',
        ])
          add(`sqs:${action}`, arn, name);
        if (!call.resources.some((x) => x.operation === 'SendMessage')) {
          const source = template.sourceOfDeadLetterQueue(arn);
          if (source) add('sqs:SendMessage', source, `to the source queue of ${name}`);
        }
      } else {
        add(`sqs:${operation.replace(/Batch$/, '')}`, arn, name);
      }
    } else if (service === 'dynamodb') {
      const table = template.tableArn(r.table ?? '');
      const resource = r.index ? `${table}/index/${r.index}` : table;
      add(
        `dynamodb:${r.operation ?? operation}`,
        resource,
        `${r.table}${r.index ? ` index ${r.index}` : ''}`,
      );
    } else {
      throw new Error(`${principal}: no IAM mapping for ${service} ${operation}`);
    }
  }
  return requests;
}

/** Asks the evaluator: Allowed, ExplicitlyDenied or ImplicitlyDenied (or `error: ...`). */
export async function evaluate(
  principal: Principal,
  request: { action: string; resource: string },
  template: ResolvedTemplate,
  context: Record<string, string> = { 'aws:SecureTransport': 'true' },
): Promise<string> {
  const simulation: Simulation = {
    request: {
      principal: principal.arn,
      action: request.action,
      resource: { resource: request.resource, accountId: ACCOUNT },
      contextVariables: { 'aws:PrincipalAccount': ACCOUNT, ...context },
    },
    identityPolicies: principal.identityPolicies.map((p) => ({ name: p.name, policy: p.policy })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: template.resourcePolicyFor(request.resource),
  };
  const response = await runSimulation(simulation, {});
  if (response.resultType === 'error') return `error: ${JSON.stringify(response.errors)}`;
  return response.overallResult;
}
