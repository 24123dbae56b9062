import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODE_PATTERNS, ERROR_CODES, type ErrorSpec } from '../../shared/error-codes.ts';
import { PACKAGE_ROOT } from '../../shared/paths.ts';

/**
 * The README's table of error codes, generated from shared/error-codes.ts (decision 0028):
 * `npm run docs:errors` rewrites it; test/unit/error-codes.test.ts fails while it is stale.
 */
export const TABLE_START =
  '<!-- error-codes: generated from shared/error-codes.ts by "npm run docs:errors"; edit there -->';
export const TABLE_END = '<!-- /error-codes -->';
export const README = join(PACKAGE_ROOT, 'README.md');

export function renderErrorTable(): string {
  const rows: [string, ErrorSpec][] = [
    ...Object.entries<ErrorSpec>(ERROR_CODES),
    ...Object.entries<ErrorSpec>(ERROR_CODE_PATTERNS),
  ];
  const cell = (text: string) => text.replaceAll('|', '\\|');
  const table = [
    ['code', 'kind', 'exit', 'HTTP', 'meaning'],
    ...rows.map(([code, spec]) => [
      `\`${code}\``,
      spec.kind,
      String(spec.exit),
      String(spec.http ?? '—'),
      cell(spec.meaning),
    ]),
  ];
  // Padded to the widest cell of each column, as biome formats the README's tables.
  const widths = table[0]?.map((_, i) => Math.max(...table.map((row) => [...(row[i] ?? '')].length))) ?? [];
  const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const [head, ...body] = table;
  return [line(head ?? []), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...body.map(line)].join(
    '\n',
  );
}

/** `readme` with the text between the markers replaced by the current table. */
export function withCurrentTable(readme: string): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`README.md lacks the markers ${TABLE_START} … ${TABLE_END}`);
  return `${readme.slice(0, start + TABLE_START.length)}\n${renderErrorTable()}\n${readme.slice(end)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const readme = readFileSync(README, 'utf8');
  const current = withCurrentTable(readme);
  if (current !== readme) writeFileSync(README, current);
  process.stdout.write(
    current === readme ? 'README.md: the error table is current\n' : 'README.md: error table rewritten\n',
  );
}
