// docs/DEPLOY.md against the synthesized template: the retained resources, the tables'
// keys and indexes and the alarms it lists must be the ones the stack really creates, and
// nothing retained may carry a fixed name (it would block a redeploy after `cdk destroy`).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CfnResource, Stack } from 'aws-cdk-lib';
import { REPO_ROOT } from '../../infra/image.ts';
import { referencedId, synthesizeLabeler } from './support.ts';

const doc = readFileSync(join(REPO_ROOT, 'docs/DEPLOY.md'), 'utf8');

/** The lines of the section under this heading, up to the next heading of the same or a higher level. */
function section(heading: string): string[] {
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => l.replace(/^#+\s*/, '') === heading && /^#+\s/.test(l));
  assert.ok(start >= 0, `DEPLOY.md has a section "${heading}"`);
  const level = /^#+/.exec(lines[start] ?? '')?.[0].length ?? 0;
  const end = lines.findIndex(
    (l, i) => i > start && /^#+\s/.test(l) && (/^#+/.exec(l)?.[0].length ?? 0) <= level,
  );
  return lines.slice(start + 1, end === -1 ? undefined : end);
}

/** The body rows of the first Markdown table in these lines, cells trimmed, backticks dropped. */
function tableRows(lines: readonly string[]): string[][] {
  const rows = lines.filter((l) => l.trim().startsWith('|'));
  return rows.slice(2).map((r) =>
    r
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((c) => c.trim().replace(/`/g, '')),
  );
}

const synth = synthesizeLabeler({ alarmEmail: 'ops@example.com' });
after(() => synth.cleanup());
const { stack } = synth;
const resources = synth.template.toJSON().Resources as Record<
  string,
  { Type: string; DeletionPolicy?: string; Properties?: Record<string, unknown> }
>;
/** Logical id -> construct path inside the stack (`Storage/Images`). */
const pathOf = new Map(
  stack.node
    .findAll()
    .filter((c): c is CfnResource => c instanceof CfnResource)
    .map((c) => [
      Stack.of(c).resolve(c.logicalId) as string,
      c.node.path.slice(stack.node.path.length + 1).replace(/\/Resource$/, ''),
    ]),
);

describe('docs/DEPLOY.md matches the template', () => {
  const retained = Object.entries(resources).filter(([, r]) =>
    ['Retain', 'RetainExceptOnCreate', 'Snapshot'].includes(r.DeletionPolicy ?? ''),
  );

  it('lists exactly the resources that survive `cdk destroy`, with their type', () => {
    const documented = tableRows(section('Retained on purpose')).map(([path, type]) => `${type} ${path}`);
    const actual = retained.map(([id, r]) => `${r.Type} ${pathOf.get(id)}`);
    assert.deepEqual([...documented].sort(), [...actual].sort());
    // The tables and buckets hold the data; at least these must stay.
    assert.ok(actual.filter((a) => a.startsWith('AWS::DynamoDB::Table')).length === 2);
  });

  it('retains nothing under a fixed name, so the same stack deploys again after a destroy', () => {
    // The properties that fix a physical name, for every type the stack retains or could.
    const nameProperties = [
      'TableName',
      'BucketName',
      'QueueName',
      'LogGroupName',
      'Name',
      'AliasName',
      'TopicName',
      'FunctionName',
      'RoleName',
    ];
    for (const [id, r] of retained) {
      const fixed = nameProperties.filter((p) => r.Properties?.[p] !== undefined);
      assert.deepEqual(fixed, [], `${r.Type} ${pathOf.get(id)} is retained and named`);
    }
    // The schedule group used to be retained and named by the L2 construct.
    for (const [, r] of Object.entries(resources).filter(
      ([, r]) => r.Type === 'AWS::Scheduler::ScheduleGroup',
    )) {
      assert.equal(r.DeletionPolicy, 'Delete');
      assert.equal(r.Properties?.Name, undefined);
    }
    // The KMS key goes too (the doc says it is scheduled for deletion).
    for (const [, r] of Object.entries(resources).filter(([, r]) => r.Type === 'AWS::KMS::Key')) {
      assert.equal(r.DeletionPolicy, 'Delete');
    }
  });

  it('gives each table the keys and indexes the template has, and mentions no other index', () => {
    const outputs = synth.template.toJSON().Outputs as Record<string, { Value: unknown }>;
    const rows = tableRows(section('Tables and keys'));
    const tables = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::DynamoDB::Table');
    assert.equal(rows.length, tables.length);
    const key = (schema: unknown) =>
      Object.fromEntries(
        (schema as { AttributeName: string; KeyType: string }[]).map((k) => [k.KeyType, k.AttributeName]),
      );
    const allIndexes: string[] = [];
    for (const [output, pk, sk, indexes] of rows) {
      const id = referencedId(outputs[output ?? '']?.Value);
      const table = id ? resources[id] : undefined;
      assert.ok(table?.Type === 'AWS::DynamoDB::Table', `output ${output} names a table`);
      assert.deepEqual(key(table.Properties?.KeySchema), { HASH: pk, RANGE: sk }, output);
      const gsis = (table.Properties?.GlobalSecondaryIndexes ?? []) as {
        IndexName: string;
        KeySchema: unknown;
      }[];
      const documented = [...(indexes ?? '').matchAll(/([\w-]+) \(([\w-]+), ([\w-]+)\)/g)].map((m) =>
        m.slice(1, 4),
      );
      assert.deepEqual(
        documented,
        gsis.map((g) => {
          const k = key(g.KeySchema);
          return [g.IndexName, k.HASH, k.RANGE];
        }),
        output,
      );
      allIndexes.push(...gsis.map((g) => g.IndexName));
    }
    // No prose elsewhere in the guide names an index the stack does not have (e.g. a `by-job`).
    const mentioned = new Set([...doc.matchAll(/`(by-[a-z-]+)`/g)].map((m) => m[1]));
    for (const name of mentioned)
      assert.ok(allIndexes.includes(name ?? ''), `DEPLOY.md mentions index ${name}`);
  });

  it('has one runbook entry, with a command to run first, for every alarm the stack creates', () => {
    const lines = section('Alarms and runbook');
    const documented = new Map<string, string>();
    let current: string[] = [];
    for (const line of lines) {
      const heading = /^###\s+(.*)$/.exec(line);
      if (heading) {
        current = [...(heading[1] ?? '').matchAll(/`([A-Za-z0-9]+)`/g)].map((m) => m[1] ?? '');
        for (const name of current) documented.set(name, '');
      } else {
        for (const name of current) documented.set(name, `${documented.get(name)}${line}\n`);
      }
    }
    const alarms = Object.values(resources)
      .filter((r) => r.Type === 'AWS::CloudWatch::Alarm' && typeof r.Properties?.AlarmName === 'string')
      .map((r) => String(r.Properties?.AlarmName).replace(`${stack.stackName}-`, ''));
    // Only the GPU step-scaling alarms are unnamed; every operator alarm carries a name.
    assert.equal(alarms.length, 23);
    assert.deepEqual([...documented.keys()].sort(), [...alarms].sort());
    for (const [name, text] of documented) {
      assert.match(text, /`(npx labeler|aws) [^`]+`/, `${name}: a command to run first`);
    }
  });
});
