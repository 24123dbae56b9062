import { resolve } from 'node:path';
import { dataDirProblem } from '../local/data-dir.ts';
import { processAlive, readEndpoints } from '../local/endpoints.ts';
import { createAccountProbe } from '../shared/aws/doctor-probes.ts';
import {
  type CheckResult,
  type DoctorTarget,
  doctorExitCode,
  type LocalStateProbe,
  runDoctor,
} from '../shared/ops/doctor.ts';
import { systemNetwork, systemTools } from '../shared/ops/system-probes.ts';
import { GPU_INSTANCE_SIZES, GPU_WORKER } from '../shared/settings.ts';
import { oneOf, parse, positiveInt, UsageError } from './args.ts';
import { DEFAULT_DATA_DIR } from './stack.ts';

export const DOCTOR_HELP = `Usage: labeler doctor [--stack <local|name>] [options]

Checks what a stack needs before it runs: for "local" (the default) Node.js, Java
(DynamoDB Local) and loopback ports; for a deployed stack name (e.g. Labeler) also
Docker, the CDK bootstrap stack, the ECS service-linked role and the G-instance
vCPU quota, in the account and region your AWS credentials resolve to.

Options:
  --stack <name>         local, or the CloudFormation stack name (default local)
  --data-dir <dir>       local: the folder "local up" keeps its state in (default
                         .labeler): can it be written, and does a stack already run
                         there (its ports probed)
  --region <region>      AWS region (default: the SDK's, e.g. AWS_REGION or the profile)
  --gpu-instance-type <t> GPU worker instance type the quota must fit (default ${GPU_WORKER.instanceTypes[0]})
  --max-tasks <n>        GPU workers at full scale (default ${GPU_WORKER.maxTasks})
  --no-gpu               the stack is deployed with -c gpuWorkers=false: skip GPU checks
  --format <text|json>   one line per check (default text)
  -h, --help             show this help

Exit status: 0 when no check failed (warnings allowed), 1 otherwise, 2 for a usage
error.`;

export async function doctorCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    stack: { type: 'string' },
    'data-dir': { type: 'string' },
    region: { type: 'string' },
    'gpu-instance-type': { type: 'string' },
    'max-tasks': { type: 'string' },
    'no-gpu': { type: 'boolean' },
    format: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(`${DOCTOR_HELP}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const format = oneOf(values.format, '--format', ['text', 'json'], 'text');
  const stack = values.stack ?? 'local';

  let target: DoctorTarget;
  if (values['data-dir'] !== undefined && stack !== 'local')
    throw new UsageError('--data-dir goes with --stack local (a deployed stack keeps no local state)');
  if (stack === 'local') {
    target = { kind: 'local', dataDir: values['data-dir'] ? resolve(values['data-dir']) : DEFAULT_DATA_DIR };
  } else {
    const instanceType = values['gpu-instance-type'] ?? String(GPU_WORKER.instanceTypes[0]);
    const size = GPU_INSTANCE_SIZES[instanceType];
    if (!size) {
      throw new UsageError(
        `--gpu-instance-type must be one of ${Object.keys(GPU_INSTANCE_SIZES).join(', ')}, got "${instanceType}"`,
      );
    }
    const vcpus = size.vcpus;
    const maxTasks = positiveInt(values['max-tasks'], '--max-tasks', GPU_WORKER.maxTasks);
    target = {
      kind: 'aws',
      stackName: stack,
      ...(values['no-gpu'] ? {} : { gpu: { instanceType, vcpus, maxTasks } }),
    };
  }

  const results = await runDoctor(target, {
    tools: systemTools,
    network: systemNetwork,
    local: localState,
    nodeVersion: process.version,
    ...(target.kind === 'aws' ? { account: await createAccountProbe({ region: values.region }) } : {}),
  });
  for (const result of results)
    process.stdout.write(`${format === 'json' ? JSON.stringify(result) : text(result)}\n`);
  return doctorExitCode(results);
}

/** The local stack's folder, read as `local up` and `labeler query` read it. */
const localState: LocalStateProbe = {
  dataDirProblem,
  runningStack: async (dataDir) => {
    const running = await readEndpoints(dataDir);
    if (!running || !processAlive(running.pid)) return undefined;
    const ports = Object.values(running.endpoints ?? {})
      .map((url) => Number(new URL(url).port))
      .filter((port, i, all) => port > 0 && all.indexOf(port) === i);
    return { pid: running.pid, ports };
  },
};

function text(r: CheckResult): string {
  return `${r.status.padEnd(4)}  ${r.check.padEnd(28)} ${r.detail}${r.fix ? `\n      fix: ${r.fix}` : ''}`;
}
