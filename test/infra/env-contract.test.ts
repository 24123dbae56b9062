import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { REPO_ROOT } from '../../infra/image.ts';
import { ENTRY_ENV } from '../../shared/config.ts';
import { ENV, type EnvName } from '../../shared/settings.ts';
import { referencedId, resourcesOf, statementsOfRole, synthesizeLabeler } from './support.ts';

const synth = synthesizeLabeler();
const { stack, template } = synth;
after(() => synth.cleanup());

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

function gpuEntry(): Deployed {
  const gpu = stack.gpuWorkers;
  assert.ok(gpu);
  const p = resourcesOf(template, 'AWS::ECS::TaskDefinition')[idOf(gpu.taskDefinition)]?.Properties ?? {};
  const [container] = p.ContainerDefinitions as { Environment: { Name: string; Value: unknown }[] }[];
  const roleId = referencedId(p.TaskRoleArn);
  assert.ok(container && roleId);
  return {
    env: Object.fromEntries(container.Environment.map((e) => [e.Name, e.Value])),
    roleId,
    runtimeProvides: [],
  };
}

const entries: Record<keyof typeof ENTRY_ENV, Deployed> = {
  classify: lambdaEntry(stack.classify.function),
  planJob: lambdaEntry(stack.jobScheduler.function),
  query: lambdaEntry(stack.queryApi.function),
  gpuWorker: gpuEntry(),
};

/** Variables that name a resource the process never touches itself, with the reason. */
const NAME_ONLY: Partial<Record<keyof typeof ENTRY_ENV, readonly EnvName[]>> = {
  // The default bucket written into image query keys; results are read from the table.
  query: [ENV.imagesBucket],
};

describe('environment contract: each entry point gets exactly what it reads', () => {
  for (const [entry, deployed] of Object.entries(entries) as [keyof typeof ENTRY_ENV, Deployed][]) {
    const reads = ENTRY_ENV[entry];

    it(`${entry}: sets nothing the code does not read`, () => {
      const readable = new Set<string>([...reads.required, ...reads.optional]);
      const unread = Object.keys(deployed.env).filter((name) => !readable.has(name));
      assert.deepEqual(unread, []);
    });

    it(`${entry}: sets every variable the code requires`, () => {
      const missing = reads.required.filter(
        (name) => !(name in deployed.env) && !deployed.runtimeProvides.includes(name),
      );
      assert.deepEqual(missing, []);
    });

    it(`${entry}: every variable naming a resource comes with a permission on it`, () => {
      const resources = JSON.stringify(
        statementsOfRole(template, deployed.roleId).flatMap((s) => s.Resource),
      );
      for (const [name, value] of Object.entries(deployed.env)) {
        const target = referencedId(value);
        if (!target || target.startsWith('AWS::') || NAME_ONLY[entry]?.includes(name as EnvName)) continue;
        assert.ok(resources.includes(`"${target}"`), `${entry}: ${name} names ${target} without a grant`);
      }
    });
  }

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
