import { csvLine } from '../shared/csv.ts';
import { oneOf } from './args.ts';

/** How a command prints rows: JSON Lines for programs (the default), a table or CSV for people. */
export type RowFormat = 'jsonl' | 'table' | 'csv';

export interface Column<T> {
  readonly header: string;
  readonly value: (row: T) => string | number | undefined;
  /**
   * Widest a table cell gets. Keys keep their end (the file name tells images apart);
   * other text keeps its start. @default 40
   */
  readonly maxWidth?: number;
  readonly keep?: 'start' | 'end';
  readonly align?: 'left' | 'right';
}

export function rowFormat<const T extends RowFormat>(
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  return oneOf(value, '--format', allowed, fallback);
}

/**
 * Writes rows in the chosen format. JSON Lines stream one line per row, CSV one record
 * per row through the code base's one CSV writer (shared/csv.ts, as `labeler export`
 * writes it); a table needs every row for its column widths, so it is written when the
 * rows end.
 */
export class RowWriter<T> {
  readonly #format: RowFormat;
  readonly #columns: readonly Column<T>[];
  readonly #json: (row: T) => unknown;
  readonly #out: (text: string) => void;
  readonly #held: T[] = [];
  #started = false;

  constructor(options: {
    format: RowFormat;
    columns: readonly Column<T>[];
    /** The JSON Lines shape of a row. */
    json: (row: T) => unknown;
    out?: (text: string) => void;
  }) {
    this.#format = options.format;
    this.#columns = options.columns;
    this.#json = options.json;
    this.#out = options.out ?? ((text) => process.stdout.write(text));
  }

  write(row: T): void {
    if (this.#format === 'jsonl') this.#out(`${JSON.stringify(this.#json(row))}\n`);
    else if (this.#format === 'csv') {
      if (!this.#started) this.#out(csvLine(this.#columns.map((c) => c.header)));
      this.#out(csvLine(this.#columns.map((c) => c.value(row))));
    } else this.#held.push(row);
    this.#started = true;
  }

  /** Ends the output: the table, or a CSV header alone when there were no rows. */
  end(): void {
    if (this.#format === 'csv' && !this.#started) this.#out(csvLine(this.#columns.map((c) => c.header)));
    if (this.#format === 'table') this.#out(formatTable(this.#columns, this.#held));
  }
}

function cellText(value: string | number | undefined): string {
  return value === undefined ? '' : String(value);
}

/** Aligned columns separated by two spaces, each cell on one line and cut to its column's width. */
export function formatTable<T>(columns: readonly Column<T>[], rows: readonly T[]): string {
  const cells = rows.map((row) =>
    columns.map((c) => truncate(oneLine(cellText(c.value(row))), c.maxWidth ?? 40, c.keep ?? 'start')),
  );
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => width(r[i] ?? ''))));
  const line = (fields: readonly string[]) =>
    fields
      .map((f, i) => {
        const pad = ' '.repeat((widths[i] ?? 0) - width(f));
        return columns[i]?.align === 'right' ? pad + f : f + pad;
      })
      .join('  ')
      .trimEnd();
  return `${[line(columns.map((c) => c.header)), ...cells.map(line)].join('\n')}\n`;
}

/** Control characters (a key may hold a newline) would break the table's lines. */
function oneLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing them is the point
  return text.replace(/[\u0000-\u001f\u007f]/g, '?');
}

/** Width in code points: close enough for keys and labels, and never splits a surrogate pair. */
function width(text: string): number {
  return [...text].length;
}

export function truncate(text: string, max: number, keep: 'start' | 'end'): string {
  const chars = [...text];
  if (chars.length <= max) return text;
  return keep === 'end'
    ? `…${chars.slice(chars.length - max + 1).join('')}`
    : `${chars.slice(0, max - 1).join('')}…`;
}
