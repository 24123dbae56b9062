import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import { csvRows } from './ground-truth.ts';

/** Reads a `file,label` CSV (header row first) into a map from file name to true label. */
export async function readExpectedLabels(csvPath: string): Promise<Map<string, string>> {
  const text = await readFile(csvPath, 'utf8').catch((cause: unknown) => {
    throw new LabelerError(CODE.file.notFound, `${csvPath} cannot be read`, { cause });
  });
  // The same CSV reading as ground truth (evaluate --truth): quoted fields, CRLF, a BOM.
  const rows = csvRows(text);
  const header = rows.shift();
  if (header?.[0] !== 'file' || header[1] !== 'label') {
    throw new LabelerError(CODE.csv.invalid, `${csvPath} must start with the header "file,label"`);
  }
  const expected = new Map<string, string>();
  for (const row of rows) {
    const [file, label] = row;
    if (!file || label === undefined) {
      throw new LabelerError(CODE.csv.invalid, `${csvPath}: malformed row "${row.join(',')}"`);
    }
    expected.set(file, label);
  }
  return expected;
}

export interface AccuracyReport {
  /** Files that had an expected label. */
  readonly compared: number;
  readonly correct: number;
  readonly accuracy: number;
}

/** Counts top-1 hits; a file matches the CSV by its base name. Failed files count as misses. */
export class AccuracyCounter {
  readonly #expected: ReadonlyMap<string, string>;
  #compared = 0;
  #correct = 0;

  constructor(expected: ReadonlyMap<string, string>) {
    this.#expected = expected;
  }

  add(file: string, top1: string | undefined): void {
    const truth = this.#expected.get(basename(file));
    if (truth === undefined) return;
    this.#compared++;
    if (top1 === truth) this.#correct++;
  }

  report(): AccuracyReport {
    return {
      compared: this.#compared,
      correct: this.#correct,
      accuracy: this.#compared === 0 ? 0 : this.#correct / this.#compared,
    };
  }
}
