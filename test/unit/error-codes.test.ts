import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import {
  CODE,
  ERROR_CODES,
  type ErrorCode,
  errorSpec,
  exitStatusOf,
  httpStatusOf,
  isErrorCode,
  queryApiHttpCode,
} from '../../shared/error-codes.ts';
import { LabelerError } from '../../shared/errors.ts';
import { PACKAGE_ROOT } from '../../shared/paths.ts';
import {
  README,
  renderErrorTable,
  TABLE_END,
  TABLE_START,
  withCurrentTable,
} from '../helpers/error-table.ts';

const REGISTRY = 'shared/error-codes.ts';
const PRODUCT = ['shared', 'cli', 'ui', 'local', 'functions', 'infra', 'bin'];
const DECLARED = Object.keys(ERROR_CODES) as (keyof typeof ERROR_CODES)[];

function sourceFiles(dir: string): string[] {
  return readdirSync(join(PACKAGE_ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|mts|js|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts'))
    .map((e) => relative(PACKAGE_ROOT, join(e.parentPath ?? e.path, e.name)))
    .filter((f) => !f.split('/').includes('node_modules') && !f.split('/').includes('cdk.out'));
}

/**
 * Strings of the form `family/name` whose family is a code family but that are not error
 * codes: `labeler doctor`'s check ids (shared/ops/doctor.ts).
 */
const NOT_CODES = new Set([
  'aws/cdk-bootstrap',
  'aws/stack',
  'aws/ecs-service-linked-role',
  'aws/gpu-vcpu-quota',
  'local/loopback-ports',
  'local/data-dir',
  'local/running-stack',
]);
const FAMILIES = new Set(DECLARED.map((c) => c.split('/')[0]));
const camel = (s: string) => s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const constantOf = (code: string) => `CODE.${code.split('/').map(camel).join('.')}`;

interface Finding {
  readonly line: number;
  readonly code: string;
  /** Whether shared/error-codes.ts declares it; else it only looks like one of its families. */
  readonly declared: boolean;
}

/**
 * The codes written inside the string and template literals of a source (comments are
 * free): a declared code anywhere in a literal but a `*_HELP` text, and a `family/name` of a
 * declared family that is not declared, as a whole literal or in a help text (a new code
 * someone forgot to declare).
 */
function codeLiterals(name: string, text: string): Finding[] {
  const source = ts.createSourceFile(name, text, ts.ScriptTarget.Latest, true);
  const found: Finding[] = [];
  const visit = (node: ts.Node, inHelp: boolean): void => {
    if (
      ts.isStringLiteral(node) ||
      ts.isNoSubstitutionTemplateLiteral(node) ||
      ts.isTemplateHead(node) ||
      ts.isTemplateMiddle(node) ||
      ts.isTemplateTail(node)
    ) {
      const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
      for (const m of node.text.matchAll(/(?<![a-z0-9_./-])([a-z0-9-]+)\/[a-z0-9-]+(?![a-z0-9_/-])/g)) {
        // A command's help text shows codes as the user reads them, as the README does: it
        // may write them, but only declared ones (a renamed code fails here, not in a user's hands).
        if (isErrorCode(m[0])) {
          if (!inHelp) found.push({ line, code: m[0], declared: true });
        } else if (inHelp && FAMILIES.has(m[1] as string) && !NOT_CODES.has(m[0]))
          found.push({ line, code: m[0], declared: false });
      }
      const whole = node.text.match(/^([a-z0-9-]+)\/[a-z0-9-]+$/);
      if (whole && !isErrorCode(whole[0]) && FAMILIES.has(whole[1] as string) && !NOT_CODES.has(whole[0]))
        found.push({ line, code: whole[0], declared: false });
    }
    const help = inHelp || (ts.isVariableDeclaration(node) && /_HELP$/.test(node.name.getText(source)));
    ts.forEachChild(node, (child) => visit(child, help));
  };
  visit(source, false);
  return found;
}

function advice({ code, declared }: Finding): string {
  return declared
    ? `'${code}': name it ${constantOf(code)} (import { CODE } from shared/error-codes.ts)`
    : `'${code}': declare ${code} in shared/error-codes.ts (kind, exit, http, meaning), run "npm run docs:errors", then name it ${constantOf(code)}`;
}

describe('the error code registry (shared/error-codes.ts)', () => {
  it('is the only product source that writes a registered code as a string', () => {
    const files = PRODUCT.flatMap(sourceFiles).filter((f) => f !== REGISTRY);
    assert.ok(files.length > 100, `scanned only ${files.length} files`);
    const found = files.flatMap((file) =>
      codeLiterals(file, readFileSync(join(PACKAGE_ROOT, file), 'utf8')).map(
        (f) => `${file}:${f.line}: ${advice(f)}`,
      ),
    );
    assert.deepEqual(found, [], `error codes written as strings outside ${REGISTRY}:\n${found.join('\n')}`);
  });

  it('finds a code written as a string or in a template, an undeclared one of a family, none in a comment', () => {
    // The scanner on a source of its own: the check above is only as good as what it sees.
    const probe = [
      "// 'image/empty' in a comment",
      "const a = 'image/empty';",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the probe is source text holding a template
      'const b = `${x} truth/unknown-label: ${y}`;',
      "const c = 'models/x'; const d = 'aws/stack'; const e = 'application/json';",
      "const f = 'image/corrupt';",
      "export const X_HELP = 'fails with image/decode-failed or image/corrupted';",
    ].join('\n');
    assert.deepEqual(codeLiterals('probe.ts', probe), [
      { line: 2, code: 'image/empty', declared: true },
      { line: 3, code: 'truth/unknown-label', declared: true },
      { line: 5, code: 'image/corrupt', declared: false },
      { line: 6, code: 'image/corrupted', declared: false },
    ]);
    assert.match(
      advice({ line: 5, code: 'image/corrupt', declared: false }),
      /declare image\/corrupt in shared\/error-codes.ts/,
    );
    assert.match(advice({ line: 2, code: 'image/empty', declared: true }), /CODE\.image\.empty/);
  });

  it('declares every code a product file names that is not a TypeScript literal (the model export script)', () => {
    const script = readFileSync(join(PACKAGE_ROOT, 'models', 'export_efficientnet.py'), 'utf8');
    const named = [...script.matchAll(/"(model\/[a-z0-9-]+)"/g)].map((m) => m[1] as string);
    assert.ok(named.length >= 2, 'the export script names its failure codes');
    for (const code of named) assert.ok(isErrorCode(code), `declare ${code} in ${REGISTRY}`);
  });

  it('reaches every declared code through CODE, family by family in camelCase', () => {
    const leaves = Object.values(CODE).flatMap((family) => Object.values(family) as string[]);
    assert.deepEqual(leaves.sort(), [...DECLARED].sort());
    assert.equal(CODE.image.decodeFailed, 'image/decode-failed');
    assert.equal(CODE.queryApi.badResponse, 'query-api/bad-response');
    assert.equal(CODE.model.exportNeedsTorch, 'model/export-needs-torch');
  });

  it('gives every code a kind, an exit status, a meaning and at most a 4xx/5xx HTTP status', () => {
    const kinds = new Set(['permanent', 'transient', 'start-up', 'client', 'local', 'report']);
    for (const code of DECLARED) {
      const spec = errorSpec(code);
      assert.ok(/^[a-z0-9-]+\/[a-z0-9-]+$/.test(code), code);
      assert.ok(kinds.has(spec.kind), `${code}: kind ${spec.kind}`);
      assert.ok([0, 1, 2, 3].includes(spec.exit), `${code}: exit ${spec.exit}`);
      assert.ok(
        spec.http === undefined || (spec.http >= 400 && spec.http < 600),
        `${code}: http ${spec.http}`,
      );
      assert.ok(spec.meaning.length > 5, `${code}: meaning`);
    }
  });

  it('takes only declared codes (a type error otherwise)', () => {
    // @ts-expect-error -- 'image/corrupt' is not declared in shared/error-codes.ts
    const undeclared = new LabelerError('image/corrupt', 'x');
    assert.equal(undeclared.code, 'image/corrupt');
    const code: ErrorCode = queryApiHttpCode(418);
    assert.equal(code, 'query-api/http-418');
    assert.equal(isErrorCode('query-api/http-418'), true);
    assert.equal(isErrorCode('image/corrupt'), false);
  });

  it('answers the exit and HTTP statuses the prefix rules it replaced gave', () => {
    // The stable contract, as cli/main.ts, labeling/query-api.ts and ui/server.ts computed it
    // from prefixes before the registry: model/ exit 3; */not-found 404; query|job|ui|truth
    // 400; a store failure a retry may cure 503; anything else 500.
    const exitBefore = (code: string) => (code.startsWith('model/') ? 3 : code === 'cli/usage' ? 2 : 1);
    // Codes the commands turn into usage errors (exit 2) where they meet them; the registry
    // says so, and main.ts gives them 2 where one arrives unconverted.
    const usage = new Set([
      'query/bad-request',
      'query/bad-cursor',
      'job/invalid-request',
      'job/invalid-sample',
      'job/bucket-not-readable',
      'job/unknown-model',
      'review/bad-export',
    ]);
    const httpBefore = (code: string) => {
      if (code === 'http/bad-request') return 400;
      if (code === 'http/forbidden') return 403;
      if (code === 'http/method-not-allowed') return 405;
      if (code.endsWith('/not-found')) return 404;
      // compare/ came after the registry; its page route answers like evaluation's (truth/)
      if (/^(query|job|ui|truth|compare)\//.test(code)) return 400;
      // drift (decision 0039) came after too: a schedule with no finished run yet is a state
      // the request conflicts with; a --baseline of another schedule's job a bad request
      if (code === 'schedule/no-finished-run') return 409;
      if (code === 'schedule/baseline-not-a-run') return 400;
      if (['aws/throttled', 'aws/unavailable', 'aws/timeout'].includes(code)) return 503;
      return 500;
    };
    for (const code of DECLARED) {
      if (errorSpec(code).kind === 'report') continue;
      assert.equal(exitStatusOf(code), usage.has(code) ? 2 : exitBefore(code), `exit of ${code}`);
      assert.equal(httpStatusOf(code), httpBefore(code), `HTTP status of ${code}`);
    }
    assert.equal(exitStatusOf('model/not-found'), 3);
    assert.equal(httpStatusOf('query/bad-cursor'), 400);
    assert.equal(httpStatusOf('job/not-found'), 404);
  });

  it('is the README error table (npm run docs:errors writes it)', () => {
    const readme = readFileSync(README, 'utf8');
    assert.ok(
      readme.includes(TABLE_START) && readme.includes(TABLE_END),
      'README.md keeps the table markers',
    );
    assert.equal(
      readme,
      withCurrentTable(readme),
      'README.md error table is stale: run "npm run docs:errors" and commit README.md',
    );
    const table = renderErrorTable();
    const rows = new Map(
      table
        .split('\n')
        .map((line) => line.split(' | ').map((cell) => cell.replace(/^\| |\s*\|?$/g, '').trim()))
        .map((cells) => [cells[0], cells.slice(1)] as const),
    );
    for (const code of DECLARED) {
      const spec = errorSpec(code);
      assert.deepEqual(
        rows.get(`\`${code}\``),
        [spec.kind, String(spec.exit), String(spec.http ?? '—'), spec.meaning],
        `${code} has its row in the README`,
      );
    }
    assert.deepEqual(rows.get('`model/not-found`')?.slice(0, 3), ['start-up', '3', '404']);
    assert.ok(table.includes('`system/<errno>`'), 'the CLI’s system-call code has its row');
  });
});
