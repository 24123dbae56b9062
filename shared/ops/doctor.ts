import { errorMessage } from '../errors.ts';

/**
 * `labeler doctor`: every pre-step a deploy (or the one-machine stack) needs, checked
 * before anything is built. The checks talk to the machine and the account through
 * three small ports, so they run against stubs in tests and against the SDK and the
 * real tools in the CLI.
 */

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  /** Stable id, e.g. `aws/ecs-service-linked-role`. */
  readonly check: string;
  readonly status: CheckStatus;
  readonly detail: string;
  /** What to do about a warn or fail. */
  readonly fix?: string;
}

export interface ToolProbe {
  /** The output (stdout, else stderr) of running the command, or undefined if it cannot run. */
  run(command: string, args: readonly string[]): Promise<string | undefined>;
}

export interface NetworkProbe {
  /** Whether a TCP server can listen on host:port (port 0: any free port). */
  canListen(host: string, port: number): Promise<boolean>;
}

/** The local stack's state folder (`--data-dir`): whether it is usable, and who runs there. */
export interface LocalStateProbe {
  /** Why `local up` could not keep its state in the folder, or undefined when it could. */
  dataDirProblem(dataDir: string): Promise<string | undefined>;
  /** The `local up` process running with the folder (its endpoints.json), and the loopback ports it serves. */
  runningStack(dataDir: string): Promise<{ pid: number; ports: number[] } | undefined>;
}

export interface StackDescription {
  readonly status: string;
  readonly outputs: Readonly<Record<string, string>>;
}

export interface AccountProbe {
  readonly region: string;
  /** The CloudFormation stack, or undefined if it does not exist. */
  describeStack(name: string): Promise<StackDescription | undefined>;
  roleExists(roleName: string): Promise<boolean>;
  /** The applied quota value (the AWS default if none is applied), or undefined if unknown. */
  quota(serviceCode: string, quotaCode: string): Promise<number | undefined>;
}

export interface DoctorPorts {
  readonly tools: ToolProbe;
  readonly network: NetworkProbe;
  /** Only for the local stack with a data dir. */
  readonly local?: LocalStateProbe;
  /** Only for a deployed stack. */
  readonly account?: AccountProbe;
  /** `process.version` of the Node.js that runs the CLI. */
  readonly nodeVersion: string;
}

export type DoctorTarget =
  | { readonly kind: 'local'; readonly dataDir?: string }
  | {
      readonly kind: 'aws';
      readonly stackName: string;
      /** vCPUs of one GPU worker instance and the most that run at once, or none without GPU workers. */
      readonly gpu?: { readonly instanceType: string; readonly vcpus: number; readonly maxTasks: number };
    };

export const REQUIREMENTS = {
  node: 20,
  java: 17,
  /** CDK's bootstrap stack, and the oldest template version current CDK deploys with. */
  bootstrapStack: 'CDKToolkit',
  bootstrapVersion: 6,
  ecsServiceLinkedRole: 'AWSServiceRoleForECS',
  /** Service Quotas: EC2 "Running On-Demand G and VT instances", in vCPUs. */
  gpuQuota: { serviceCode: 'ec2', quotaCode: 'L-DB2E81BA' },
} as const;

export async function runDoctor(target: DoctorTarget, ports: DoctorPorts): Promise<CheckResult[]> {
  const checks: Array<[string, () => Promise<CheckResult>]> = [
    ['tools/node', () => checkNode(ports.nodeVersion)],
  ];
  if (target.kind === 'local') {
    checks.push(
      ['tools/java', () => checkJava(ports.tools, 'fail')],
      ['local/loopback-ports', () => checkLoopback(ports.network)],
    );
    const local = ports.local;
    const dataDir = target.dataDir;
    if (dataDir !== undefined && local) {
      checks.push(
        ['local/data-dir', () => checkDataDir(local, dataDir)],
        ['local/running-stack', () => checkRunningStack(local, ports.network, dataDir)],
      );
    }
  } else {
    const account = ports.account;
    if (!account) throw new Error('runDoctor: a deployed stack needs the account probe');
    checks.push(
      ['tools/docker', () => checkDocker(ports.tools)],
      ['tools/java', () => checkJava(ports.tools, 'warn')],
      ['aws/cdk-bootstrap', () => checkBootstrap(account)],
      ['aws/stack', () => checkStack(account, target.stackName)],
    );
    if (target.gpu) {
      const gpu = target.gpu;
      checks.push(
        ['aws/ecs-service-linked-role', () => checkServiceLinkedRole(account)],
        ['aws/gpu-vcpu-quota', () => checkGpuQuota(account, gpu)],
      );
    }
  }
  const results: CheckResult[] = [];
  for (const [check, run] of checks) {
    try {
      results.push(await run());
    } catch (error) {
      // No credentials, access denied, throttled: the pre-step is unverified, so not ok.
      results.push({ check, status: 'fail', detail: `could not check: ${errorMessage(error)}` });
    }
  }
  return results;
}

/** 0 when nothing failed (warnings allowed), 1 otherwise; 2, a usage error, never gets here. */
export function doctorExitCode(results: readonly CheckResult[]): number {
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}

function majorOf(version: string | undefined, pattern: RegExp): number | undefined {
  const match = version?.match(pattern);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

async function checkNode(version: string): Promise<CheckResult> {
  const major = majorOf(version, /v?(\d+)\./);
  const ok = major !== undefined && major >= REQUIREMENTS.node;
  return {
    check: 'tools/node',
    status: ok ? 'ok' : 'fail',
    detail: `Node.js ${version}`,
    ...(ok ? {} : { fix: `install Node.js ${REQUIREMENTS.node} or later` }),
  };
}

async function checkJava(tools: ToolProbe, missing: 'fail' | 'warn'): Promise<CheckResult> {
  const out = await tools.run('java', ['-version']);
  // `openjdk version "17.0.15"`, `java version "1.8.0_392"` (major 8 written as 1.8).
  const quoted = out?.match(/version "([^"]+)"/)?.[1];
  const major =
    quoted === undefined
      ? undefined
      : Number(quoted.startsWith('1.') ? quoted.split('.')[1] : quoted.split(/[.+-]/)[0]);
  const ok = major !== undefined && major >= REQUIREMENTS.java;
  const why = 'DynamoDB Local (the one-machine stack) runs on it';
  return {
    check: 'tools/java',
    status: ok ? 'ok' : missing,
    detail: out === undefined ? `java not found; ${why}` : `Java ${quoted ?? 'of unknown version'}; ${why}`,
    ...(ok
      ? {}
      : {
          fix: `install a Java ${REQUIREMENTS.java}+ runtime (e.g. apt-get install openjdk-17-jre-headless)`,
        }),
  };
}

async function checkLoopback(network: NetworkProbe): Promise<CheckResult> {
  // The local stack binds its emulators to free ports on 127.0.0.1, chosen at start.
  const ok = await network.canListen('127.0.0.1', 0);
  return {
    check: 'local/loopback-ports',
    status: ok ? 'ok' : 'fail',
    detail: ok ? 'free ports on 127.0.0.1 can be bound' : 'cannot listen on 127.0.0.1',
    ...(ok ? {} : { fix: 'the emulators bind 127.0.0.1 only: allow local listening sockets' }),
  };
}

async function checkDataDir(local: LocalStateProbe, dataDir: string): Promise<CheckResult> {
  const problem = await local.dataDirProblem(dataDir);
  return {
    check: 'local/data-dir',
    status: problem ? 'fail' : 'ok',
    detail: problem ?? `${dataDir} can hold the local stack's state`,
    ...(problem
      ? { fix: 'pass --data-dir <dir> naming a folder you can write, to doctor and local up' }
      : {}),
  };
}

/**
 * A `local up` already running with the data dir: its ports must be in use (probed: a
 * listen on each must fail), and a second `local up` there would stop. Ports that can be
 * bound mean the process holds the folder without serving it.
 */
async function checkRunningStack(
  local: LocalStateProbe,
  network: NetworkProbe,
  dataDir: string,
): Promise<CheckResult> {
  const running = await local.runningStack(dataDir);
  if (!running) {
    return { check: 'local/running-stack', status: 'ok', detail: `no local stack runs with ${dataDir}` };
  }
  const free: number[] = [];
  for (const port of running.ports) if (await network.canListen('127.0.0.1', port)) free.push(port);
  if (free.length > 0) {
    return {
      check: 'local/running-stack',
      status: 'warn',
      detail: `process ${running.pid} holds ${dataDir}, but nothing listens on its port(s) ${free.join(', ')}`,
      fix: `stop process ${running.pid} (Ctrl-C in its terminal), then start "labeler local up" again`,
    };
  }
  return {
    check: 'local/running-stack',
    status: 'warn',
    detail: `a local stack (pid ${running.pid}) already runs with ${dataDir}, on port(s) ${running.ports.join(', ')} (in use)`,
    fix: 'use that stack, or stop it (Ctrl-C) before "labeler local up"; or pass another --data-dir',
  };
}

async function checkDocker(tools: ToolProbe): Promise<CheckResult> {
  const server = await tools.run('docker', ['version', '--format', '{{.Server.Version}}']);
  if (server === undefined || !/^\d+\./.test(server.trim())) {
    const client = await tools.run('docker', ['--version']);
    return {
      check: 'tools/docker',
      status: 'fail',
      detail:
        client === undefined
          ? 'docker not found'
          : `${client}, but its daemon does not answer${server ? `: ${server}` : ''}`,
      fix: '`cdk deploy` builds the container images: install Docker and start its daemon',
    };
  }
  const buildx = await tools.run('docker', ['buildx', 'version']);
  return {
    check: 'tools/docker',
    status: buildx === undefined ? 'warn' : 'ok',
    detail: `Docker ${server.trim()}${buildx === undefined ? ', no buildx' : ''}`,
    ...(buildx === undefined
      ? { fix: 'install the buildx plugin: the images are built for linux/amd64' }
      : {}),
  };
}

async function checkBootstrap(account: AccountProbe): Promise<CheckResult> {
  const stack = await account.describeStack(REQUIREMENTS.bootstrapStack);
  const fix = `npx cdk bootstrap aws://ACCOUNT/${account.region}`;
  if (!stack || !/_COMPLETE$/.test(stack.status) || /DELETE|ROLLBACK_COMPLETE$/.test(stack.status)) {
    return {
      check: 'aws/cdk-bootstrap',
      status: 'fail',
      detail: stack
        ? `${REQUIREMENTS.bootstrapStack} is ${stack.status} in ${account.region}`
        : `no ${REQUIREMENTS.bootstrapStack} stack in ${account.region}`,
      fix,
    };
  }
  const version = Number(stack.outputs.BootstrapVersion);
  const current = Number.isFinite(version) && version >= REQUIREMENTS.bootstrapVersion;
  return {
    check: 'aws/cdk-bootstrap',
    status: current ? 'ok' : 'fail',
    detail: `${REQUIREMENTS.bootstrapStack} version ${stack.outputs.BootstrapVersion ?? 'unknown'} in ${account.region}`,
    ...(current ? {} : { fix }),
  };
}

async function checkStack(account: AccountProbe, name: string): Promise<CheckResult> {
  const stack = await account.describeStack(name);
  return {
    check: 'aws/stack',
    status: 'ok',
    detail: stack ? `stack ${name} is ${stack.status}` : `stack ${name} is not deployed yet`,
  };
}

async function checkServiceLinkedRole(account: AccountProbe): Promise<CheckResult> {
  const exists = await account.roleExists(REQUIREMENTS.ecsServiceLinkedRole);
  return {
    check: 'aws/ecs-service-linked-role',
    status: exists ? 'ok' : 'warn',
    detail: exists
      ? `${REQUIREMENTS.ecsServiceLinkedRole} exists: deploy without -c createEcsServiceLinkedRole`
      : `${REQUIREMENTS.ecsServiceLinkedRole} does not exist (this account never used ECS): the GPU capacity provider would fail`,
    ...(exists
      ? {}
      : {
          fix: 'deploy with -c createEcsServiceLinkedRole=true, or once: aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com',
        }),
  };
}

async function checkGpuQuota(
  account: AccountProbe,
  gpu: { readonly instanceType: string; readonly vcpus: number; readonly maxTasks: number },
): Promise<CheckResult> {
  const { serviceCode, quotaCode } = REQUIREMENTS.gpuQuota;
  const value = await account.quota(serviceCode, quotaCode);
  const one = gpu.vcpus;
  const all = gpu.vcpus * gpu.maxTasks;
  const fix =
    `ask for at least ${all} vCPUs of "Running On-Demand G and VT instances" (${quotaCode}) in Service Quotas ` +
    `(${account.region}), or deploy with -c gpuWorkers=false`;
  if (value === undefined || value < one) {
    return {
      check: 'aws/gpu-vcpu-quota',
      status: 'fail',
      detail: `G and VT on-demand quota is ${value ?? 'unknown'} vCPUs; one ${gpu.instanceType} needs ${one}`,
      fix,
    };
  }
  return {
    check: 'aws/gpu-vcpu-quota',
    status: value >= all ? 'ok' : 'warn',
    detail: `G and VT on-demand quota is ${value} vCPUs: ${Math.floor(value / one)} of ${gpu.maxTasks} ${gpu.instanceType} workers fit`,
    ...(value >= all ? {} : { fix }),
  };
}
