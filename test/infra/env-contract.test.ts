import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { DEFAULT_MODEL_DIR, REPO_ROOT } from '../../infra/image.ts';
import { ENTRY_ENV } from '../../shared/config.ts';
import { ENV, type EnvName } from '../../shared/settings.ts';
import {
  makeSecondModel,
  referencedId,
  resourcesOf,
  statementsOfRole,
  synthesizeLabeler,
} from './support.ts';

const second = makeSecondModel();
const synth = synthesizeLabeler({ models: [DEFAULT_MODEL_DIR, { name: 'second', dir: second.dir }] });
const { stack, template } = synth;
after(() => {
  synth.cleanup();
  second.cleanup();
});

function idOf(construct: IConstruct): string {
  return Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
}

interface Deployed {
  readonly env: Record<string, unknown>;
  readonly roleId: string;
  /** Lambda sets AWS_REGION itself (and refuses it in a function's environment). */
  readonly runtimeProvides: readonly EnvName[];
}

function lambdaEntry(fn: IConstruct): Deployed {
  const p = resourcesOf(template, 'AWS::Lambda::Function')[idOf(fn)]?.Properties ?? {};
  const roleId = referencedId(p.Role);
  assert.ok(roleId);
  return {
    env: (p.Environment as { Variables: Record<string, unknown> }).Variables,
    roleId,
    runtimeProvides: [ENV.region],
  };
}

function gpuEntry(taskDefinition: IConstruct): Deployed {
  const p = resourcesOf(template, 'AWS::ECS::TaskDefinition')[idOf(taskDefinition)]?.Properties ?? {};
  const [container] = p.ContainerDefinitions as { Environment: { Name: string; Value: unknown }[] }[];
  const roleId = referencedId(p.TaskRoleArn);
  assert.ok(container && roleId);
  return {
    env: Object.fromEntries(container.Environment.map((e) => [e.Name, e.Value])),
    roleId,
    runtimeProvides: [],
  };
}

const gpu = stack.gpuWorkers;
assert.ok(gpu);
/** Every process of a stack hosting two models: each model's labeling workers read alike. */
const deployedEntries: [string, keyof typeof ENTRY_ENV, Deployed][] = [
  ...stack.hostedModels.map((h): [string, 'classify', Deployed] => [
    `classify (${h.model.name})`,
    'classify',
    lambdaEntry(h.classify.function),
  ]),
  ['planJob', 'planJob', lambdaEntry(stack.jobScheduler.function)],
  ['query', 'query', lambdaEntry(stack.queryApi.function)],
  ...gpu.services.map((s): [string, 'gpuWorker', Deployed] => [
    `gpuWorker (${s.name})`,
    'gpuWorker',
    gpuEntry(s.taskDefinition),
  ]),
];
const entries = {
  gpuWorker: gpuEntry(gpu.taskDefinition),
  planJob: lambdaEntry(stack.jobScheduler.function),
  query: lambdaEntry(stack.queryApi.function),
};

/** Variables that name a resource the process never touches itself, with the reason. */
const NAME_ONLY: Partial<Record<keyof typeof ENTRY_ENV, readonly EnvName[]>> = {
  // The default bucket written into image query keys; results are read from the table.
  query: [ENV.imagesBucket],
};

describe('environment contract: each entry point gets exactly what it reads', () => {
  for (const [label, entry, deployed] of deployedEntries) {
    const reads = ENTRY_ENV[entry];

    it(`${label}: sets nothing the code does not read`, () => {
      const readable = new Set<string>([...reads.required, ...reads.optional]);
      const unread = Object.keys(deployed.env).filter((name) => !readable.has(name));
      assert.deepEqual(unread, []);
    });

    it(`${label}: sets every variable the code requires`, () => {
      const missing = reads.required.filter(
        (name) => !(name in deployed.env) && !deployed.runtimeProvides.includes(name),
      );
      assert.deepEqual(missing, []);
    });

    it(`${label}: every variable naming a resource comes with a permission on it`, () => {
      const resources = JSON.stringify(
        statementsOfRole(template, deployed.roleId).flatMap((s) => s.Resource),
      );
      for (const [name, value] of Object.entries(deployed.env)) {
        const target = referencedId(value);
        if (!target || target.startsWith('AWS::') || NAME_ONLY[entry]?.includes(name as EnvName)) continue;
        assert.ok(resources.includes(`"${target}"`), `${label}: ${name} names ${target} without a grant`);
      }
    });
  }

  it("plan-job and query are told the stack's models under the name they read (ENV.stackModels)", () => {
    for (const entry of ['planJob', 'query'] as const) {
      const reads = [...ENTRY_ENV[entry].required, ...ENTRY_ENV[entry].optional];
      assert.ok(reads.includes(ENV.stackModels), `${entry} reads ${ENV.stackModels}`);
      const models = JSON.stringify(entries[entry].env[ENV.stackModels]);
      for (const h of stack.hostedModels)
        assert.ok(
          models.includes(JSON.stringify({ Ref: idOf(h.queues.jobs.queue) })),
          `${entry}: ${h.model.name}`,
        );
    }
  });

  it('the GPU worker is told its queue ARN under the name it reads', () => {
    assert.ok(ENTRY_ENV.gpuWorker.required.includes(ENV.bulkQueueArn));
    assert.deepEqual(entries.gpuWorker.env[ENV.bulkQueueArn], {
      'Fn::GetAtt': [idOf(stack.queues.bulk.queue), 'Arn'],
    });
  });
});

describe('environment reads in the code go through ENV', () => {
  function sources(dir: string): string[] {
    return readdirSync(join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory()
        ? sources(join(dir, e.name))
        : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')
          ? [join(dir, e.name)]
          : [],
    );
  }

  it('functions/ and shared/ read only variables named in ENV', () => {
    const known = new Set<string>(Object.values(ENV));
    const stray: string[] = [];
    for (const file of [...sources('functions'), ...sources('shared')]) {
      const text = readFileSync(join(REPO_ROOT, file), 'utf8');
      for (const match of text.matchAll(
        /process\.env\.([A-Z][A-Z0-9_]*)|process\.env\[['"]([A-Z0-9_]+)['"]\]/g,
      )) {
        const name = match[1] ?? match[2] ?? '';
        if (!known.has(name)) stray.push(`${file}: ${name}`);
      }
    }
    assert.deepEqual(stray, []);
  });
});
