import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../../shared/paths.ts';

interface Import {
  /** The importing file, relative to the package root. */
  readonly file: string;
  /** The imported module as written. */
  readonly specifier: string;
  /** The imported file relative to the package root; undefined for a package. */
  readonly target?: string;
}

/** Static, side-effect, re-export and dynamic imports of a TypeScript module. */
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g;

async function sourceFiles(folder: string): Promise<string[]> {
  const entries = await readdir(join(PACKAGE_ROOT, folder), { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(PACKAGE_ROOT, join(e.parentPath, e.name)));
}

async function importsOf(folders: readonly string[]): Promise<Import[]> {
  const out: Import[] = [];
  for (const folder of folders) {
    for (const file of await sourceFiles(folder)) {
      const text = await readFile(join(PACKAGE_ROOT, file), 'utf8');
      for (const [, specifier = ''] of text.matchAll(IMPORT)) {
        const target = specifier.startsWith('.')
          ? relative(PACKAGE_ROOT, resolve(PACKAGE_ROOT, dirname(file), specifier))
          : undefined;
        out.push({ file, specifier, ...(target ? { target } : {}) });
      }
    }
  }
  return out;
}

const graph = importsOf(['shared', 'cli']);

function breaking(rule: (i: Import & { target: string }) => boolean): Promise<string[]> {
  return graph.then((imports) =>
    imports.flatMap((i) =>
      i.target !== undefined && rule({ ...i, target: i.target })
        ? [`${i.file} imports '${i.specifier}'`]
        : [],
    ),
  );
}

const isCommand = (path: string) => /^cli\/[^/]+-command\.ts$/.test(path);

describe('module boundaries (issue 21: a thin CLI, labeling below aws, model below labeling)', () => {
  it('reads the import graph it checks', async () => {
    const imports = await graph;
    assert.ok(
      imports.some((i) => i.file === 'cli/upload-command.ts' && i.target === 'cli/stack.ts'),
      'the graph holds the known import cli/upload-command.ts → cli/stack.ts',
    );
    assert.ok(
      imports.some((i) => i.file === 'shared/aws/plan-job.ts' && i.target === 'shared/labeling/s3-event.ts'),
      'the graph holds the known import shared/aws/plan-job.ts → shared/labeling/s3-event.ts',
    );
  });

  it('no command module imports another command module (shared wiring lives in cli/stack.ts)', async () => {
    assert.deepEqual(await breaking((i) => isCommand(i.file) && isCommand(i.target)), []);
  });

  it('shared/labeling imports nothing of shared/aws (aws adapts labeling, not the reverse)', async () => {
    assert.deepEqual(
      await breaking((i) => i.file.startsWith('shared/labeling/') && i.target.startsWith('shared/aws/')),
      [],
    );
  });

  it('shared/model imports nothing of shared/labeling', async () => {
    assert.deepEqual(
      await breaking((i) => i.file.startsWith('shared/model/') && i.target.startsWith('shared/labeling/')),
      [],
    );
  });
});
