import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  type AccountProbe,
  type CheckResult,
  type DoctorPorts,
  doctorExitCode,
  type LocalStateProbe,
  type NetworkProbe,
  REQUIREMENTS,
  runDoctor,
  type StackDescription,
  type ToolProbe,
} from '../../shared/ops/doctor.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { startFakeStack } from '../helpers/fake-stack.ts';

// Stubs for the three ports: tool output by command line, an account, loopback.
function tools(outputs: Record<string, string | undefined>): ToolProbe {
  return { run: async (command, args) => outputs[[command, ...args].join(' ')] };
}
const HEALTHY_TOOLS = {
  'java -version': 'openjdk version "17.0.15" 2025-04-15',
  'docker version --format {{.Server.Version}}': '28.2.2',
  'docker --version': 'Docker version 28.2.2',
  'docker buildx version': 'github.com/docker/buildx v0.24.0',
};
const loopback = (ok: boolean): NetworkProbe => ({ canListen: async () => ok });

interface AccountState {
  stacks?: Record<string, StackDescription>;
  roles?: string[];
  gpuQuota?: number;
  failWith?: Error;
}
function account(state: AccountState): AccountProbe {
  const guard = () => {
    if (state.failWith) throw state.failWith;
  };
  return {
    region: 'eu-west-1',
    describeStack: async (name) => {
      guard();
      return state.stacks?.[name];
    },
    roleExists: async (name) => {
      guard();
      return state.roles?.includes(name) ?? false;
    },
    quota: async (service, code) => {
      guard();
      assert.deepEqual([service, code], ['ec2', 'L-DB2E81BA']);
      return state.gpuQuota;
    },
  };
}
const BOOTSTRAPPED = { CDKToolkit: { status: 'UPDATE_COMPLETE', outputs: { BootstrapVersion: '28' } } };
const AWS_TARGET = {
  kind: 'aws',
  stackName: 'Labeler',
  gpu: { instanceType: 'g5.xlarge', vcpus: 4, maxTasks: 4 },
} as const;

function byCheck(results: readonly CheckResult[]): Record<string, CheckResult> {
  return Object.fromEntries(results.map((r) => [r.check, r]));
}
function ports(overrides: Partial<DoctorPorts>): DoctorPorts {
  return { tools: tools(HEALTHY_TOOLS), network: loopback(true), nodeVersion: 'v20.20.2', ...overrides };
}

describe('labeler doctor: a deployed stack', () => {
  it('passes a ready account: bootstrap, role, quota for every worker, Docker with buildx', async () => {
    const results = await runDoctor(
      AWS_TARGET,
      ports({
        account: account({ stacks: BOOTSTRAPPED, roles: [REQUIREMENTS.ecsServiceLinkedRole], gpuQuota: 16 }),
      }),
    );
    assert.deepEqual(
      results.map((r) => [r.check, r.status]),
      [
        ['tools/node', 'ok'],
        ['tools/docker', 'ok'],
        ['tools/java', 'ok'],
        ['aws/cdk-bootstrap', 'ok'],
        ['aws/stack', 'ok'],
        ['aws/ecs-service-linked-role', 'ok'],
        ['aws/gpu-vcpu-quota', 'ok'],
      ],
    );
    assert.equal(doctorExitCode(results), 0);
  });

  it('names every missing pre-step of a fresh account, each with its fix', async () => {
    const results = byCheck(
      await runDoctor(
        AWS_TARGET,
        ports({
          tools: tools({ 'docker --version': 'Docker version 28.2.2' }),
          nodeVersion: 'v18.19.0',
          account: account({ stacks: {}, roles: [], gpuQuota: 0 }),
        }),
      ),
    );
    assert.equal(results['tools/node']?.status, 'fail');
    assert.equal(results['tools/docker']?.status, 'fail');
    assert.match(results['tools/docker']?.detail ?? '', /daemon does not answer/);
    assert.equal(results['tools/java']?.status, 'warn', 'Java only matters for the local stack');
    assert.equal(results['aws/cdk-bootstrap']?.status, 'fail');
    assert.match(results['aws/cdk-bootstrap']?.fix ?? '', /cdk bootstrap aws:\/\/ACCOUNT\/eu-west-1/);
    assert.equal(results['aws/stack']?.detail, 'stack Labeler is not deployed yet');
    assert.equal(results['aws/ecs-service-linked-role']?.status, 'warn');
    assert.match(results['aws/ecs-service-linked-role']?.fix ?? '', /createEcsServiceLinkedRole=true/);
    assert.equal(results['aws/gpu-vcpu-quota']?.status, 'fail');
    assert.match(results['aws/gpu-vcpu-quota']?.fix ?? '', /at least 16 vCPUs.*L-DB2E81BA/);
  });

  it('warns when the quota fits some workers but not maxTasks', async () => {
    const results = byCheck(
      await runDoctor(
        AWS_TARGET,
        ports({
          account: account({ stacks: BOOTSTRAPPED, roles: [REQUIREMENTS.ecsServiceLinkedRole], gpuQuota: 8 }),
        }),
      ),
    );
    assert.equal(results['aws/gpu-vcpu-quota']?.status, 'warn');
    assert.match(results['aws/gpu-vcpu-quota']?.detail ?? '', /2 of 4 g5\.xlarge workers fit/);
  });

  it('fails an old or rolled-back bootstrap stack', async () => {
    const stacks: StackDescription[] = [
      { status: 'UPDATE_COMPLETE', outputs: { BootstrapVersion: '4' } },
      { status: 'ROLLBACK_COMPLETE', outputs: {} },
    ];
    for (const stack of stacks) {
      const results = byCheck(
        await runDoctor(
          AWS_TARGET,
          ports({ account: account({ stacks: { CDKToolkit: stack }, gpuQuota: 16 }) }),
        ),
      );
      assert.equal(results['aws/cdk-bootstrap']?.status, 'fail', stack.status);
    }
  });

  it('skips the GPU checks for a stack without GPU workers', async () => {
    const results = await runDoctor(
      { kind: 'aws', stackName: 'Labeler' },
      ports({ account: account({ stacks: BOOTSTRAPPED }) }),
    );
    assert.ok(!results.some((r) => r.check.includes('gpu') || r.check.includes('service-linked')));
  });

  it('turns an AWS error (no credentials, access denied) into a failed check, not a crash', async () => {
    const results = await runDoctor(
      AWS_TARGET,
      ports({ account: account({ failWith: new Error('Could not load credentials from any providers') }) }),
    );
    const aws = results.filter((r) => r.check.startsWith('aws/'));
    assert.equal(aws.length, 4);
    for (const r of aws) {
      assert.equal(r.status, 'fail', r.check);
      assert.match(r.detail, /could not check: Could not load credentials/);
    }
    assert.equal(doctorExitCode(results), 1);
  });
});

describe('labeler doctor: the local stack', () => {
  it('needs Java 17+ and loopback ports, and never asks AWS', async () => {
    const ok = await runDoctor({ kind: 'local' }, ports({}));
    assert.deepEqual(
      ok.map((r) => [r.check, r.status]),
      [
        ['tools/node', 'ok'],
        ['tools/java', 'ok'],
        ['local/loopback-ports', 'ok'],
      ],
    );
    for (const [java, status] of [
      ['java version "1.8.0_392"', 'fail'],
      ['openjdk version "11.0.2" 2019-01-15', 'fail'],
      ['openjdk version "21" 2023-09-19', 'ok'],
      [undefined, 'fail'],
    ] as const) {
      const results = byCheck(
        await runDoctor({ kind: 'local' }, ports({ tools: tools({ 'java -version': java }) })),
      );
      assert.equal(results['tools/java']?.status, status, String(java));
    }
    const blocked = byCheck(await runDoctor({ kind: 'local' }, ports({ network: loopback(false) })));
    assert.equal(blocked['local/loopback-ports']?.status, 'fail');
  });

  it('the real command prints one JSON line per check and exits by the worst status', async () => {
    const run = await runCli(['doctor', '--stack', 'local', '--format', 'json']);
    const lines = jsonLines(run.stdout);
    assert.deepEqual(
      lines.map((l) => l.check),
      ['tools/node', 'tools/java', 'local/loopback-ports', 'local/data-dir', 'local/running-stack'],
    );
    const failed = lines.some((l) => l.status === 'fail');
    assert.equal(run.code, failed ? 1 : 0, run.stderr);
  });

  it('checks the data dir: usable, and a stack already running there with its ports probed in use', async () => {
    const probed: number[] = [];
    const network = (inUse: boolean): NetworkProbe => ({
      canListen: async (_host, port) => {
        if (port !== 0) probed.push(port);
        return port === 0 || !inUse;
      },
    });
    const local = (problem?: string, running?: { pid: number; ports: number[] }): LocalStateProbe => ({
      dataDirProblem: async () => problem,
      runningStack: async () => running,
    });
    const target = { kind: 'local', dataDir: '/srv/state' } as const;

    const fresh = byCheck(await runDoctor(target, { ...ports({}), local: local() }));
    assert.equal(fresh['local/data-dir']?.status, 'ok');
    assert.equal(fresh['local/running-stack']?.status, 'ok');

    const unusable = byCheck(
      await runDoctor(target, { ...ports({}), local: local('--data-dir /srv/state: permission denied') }),
    );
    assert.equal(unusable['local/data-dir']?.status, 'fail');
    assert.match(unusable['local/data-dir']?.detail ?? '', /permission denied/);

    const running = { pid: 4242, ports: [45001, 45002] };
    const busy = byCheck(
      await runDoctor(target, { ...ports({ network: network(true) }), local: local(undefined, running) }),
    );
    assert.deepEqual(probed, [45001, 45002], 'the running stack ports are probed');
    assert.equal(busy['local/running-stack']?.status, 'warn');
    assert.match(busy['local/running-stack']?.detail ?? '', /pid 4242.*45001, 45002 \(in use\)/);

    const stale = byCheck(
      await runDoctor(target, { ...ports({ network: network(false) }), local: local(undefined, running) }),
    );
    assert.match(stale['local/running-stack']?.detail ?? '', /nothing listens on its port\(s\) 45001, 45002/);
  });

  it('the real command takes --data-dir: a file fails local/data-dir (exit 1), a running stack is seen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'labeler-doctor-'));
    const fake = await startFakeStack();
    try {
      const file = join(dir, 'a-file');
      await writeFile(file, '');
      const bad = await runCli(['doctor', '--data-dir', file, '--format', 'json']);
      assert.equal(bad.code, 1, bad.stderr);
      const dataDir = jsonLines(bad.stdout).find((l) => l.check === 'local/data-dir');
      assert.equal(dataDir?.status, 'fail');
      assert.match(String(dataDir?.detail), /is a file, not a folder/);

      const busy = await runCli(['doctor', '--data-dir', fake.dataDir, '--format', 'json']);
      const running = jsonLines(busy.stdout).find((l) => l.check === 'local/running-stack');
      assert.equal(running?.status, 'warn', busy.stdout);
      assert.match(String(running?.detail), new RegExp(`pid ${process.pid}.*\\(in use\\)`));

      const deployed = await runCli(['doctor', '--stack', 'Labeler', '--data-dir', dir]);
      assert.equal(deployed.code, 2);
      assert.match(deployed.stderr, /--data-dir goes with --stack local/);
    } finally {
      await fake.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('help lists every exit status: 0, 1 and 2', async () => {
    const run = await runCli(['doctor', '--help']);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /Exit status: 0 .*, 1 otherwise, 2 for a usage\s+error/s);
    assert.match(run.stdout, /--data-dir <dir>/);
  });

  it('refuses an unknown GPU instance type as a usage error', async () => {
    const run = await runCli(['doctor', '--stack', 'Labeler', '--gpu-instance-type', 'p5.48xlarge']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--gpu-instance-type must be one of/);
  });
});
