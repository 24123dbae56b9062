import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { createApp } from '../../infra/create-app.ts';
import { DEFAULT_MODEL_DIR, REPO_ROOT } from '../../infra/image.ts';
import type { LabelerStack } from '../../infra/labeler-stack.ts';

export interface Synthesized {
  readonly stack: LabelerStack;
  readonly assembly: CloudAssembly;
  readonly template: Template;
  /** Every acknowledged cdk-nag rule: construct path, rule id, reason. */
  readonly acknowledgements: readonly { path: string; id: string; reason: string }[];
  readonly cleanup: () => void;
}

/**
 * Builds the real app (cdk-nag plugin included, as `cdk synth` does) into a
 * temporary folder and synthesizes it once; tests share the result. Throws if
 * cdk-nag reports an unacknowledged finding.
 */
export function synthesizeLabeler(context: Record<string, unknown> = {}): Synthesized {
  const outdir = mkdtempSync(join(tmpdir(), 'labeler-cdk-'));
  const { app, stack } = createApp({ outdir, context });
  const assembly = app.synth();
  const template = Template.fromJSON(assembly.getStackArtifact(stack.artifactId).template);
  const acknowledgements = app.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          id,
          reason,
        })),
      ),
  );
  return {
    stack,
    assembly,
    template,
    acknowledgements,
    cleanup: () => rmSync(outdir, { recursive: true, force: true }),
  };
}

export type Resource = { Type: string; Properties: Record<string, unknown> };

/** Resources of one type, by logical id. */
export function resourcesOf(template: Template, type: string): Record<string, Resource> {
  const found = template.findResources(type) as Record<
    string,
    { Type: string; Properties?: Record<string, unknown> }
  >;
  return Object.fromEntries(
    Object.entries(found).map(([id, r]) => [id, { Type: r.Type, Properties: r.Properties ?? {} }]),
  );
}

/** One statement of an IAM policy document, normalised to arrays. */
export interface Statement {
  readonly Effect: string;
  readonly Action: readonly string[];
  readonly Resource: readonly unknown[];
}

function asArray<T>(value: T | readonly T[] | undefined): readonly T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? (value as readonly T[]) : [value as T];
}

/** Every statement of every AWS::IAM::Policy attached to the role with this logical id. */
export function statementsOfRole(template: Template, roleLogicalId: string): Statement[] {
  const policies = Object.values(resourcesOf(template, 'AWS::IAM::Policy'));
  return policies
    .filter((policy) =>
      asArray(policy.Properties.Roles as unknown[]).some(
        (role) => (role as { Ref?: string }).Ref === roleLogicalId,
      ),
    )
    .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: unknown[] }).Statement)
    .map((raw) => {
      const s = raw as { Effect: string; Action: string | string[]; Resource: unknown };
      return { Effect: s.Effect, Action: asArray(s.Action), Resource: asArray(s.Resource) };
    });
}

/** The logical id a `{ 'Fn::GetAtt': [id, attr] }` or `{ Ref: id }` points at. */
export function referencedId(value: unknown): string | undefined {
  const v = value as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
  return v.Ref ?? v['Fn::GetAtt']?.[0];
}

/**
 * A second model folder for stacks hosting two models: directly under models/ (the image
 * build copies only such a folder), made by the test and removed by `cleanup`. Its manifest
 * is the bundled one's with its own id and version and a measured cost per image, so its
 * batches are sized differently; no model file (synthesis reads the manifest only).
 */
export function makeSecondModel(cpuMsPerImage = 4000): {
  readonly dir: string;
  readonly cleanup: () => void;
} {
  const dir = `models/.infra-test-${process.pid}-${cpuMsPerImage}`;
  mkdirSync(join(REPO_ROOT, dir), { recursive: true });
  const bundled = JSON.parse(readFileSync(join(REPO_ROOT, DEFAULT_MODEL_DIR, 'manifest.json'), 'utf8'));
  writeFileSync(
    join(REPO_ROOT, dir, 'manifest.json'),
    JSON.stringify({ ...bundled, id: 'second-model', version: '2.0.0', cpuMsPerImage }),
  );
  return { dir, cleanup: () => rmSync(join(REPO_ROOT, dir), { recursive: true, force: true }) };
}
