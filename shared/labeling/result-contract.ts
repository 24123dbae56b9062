import type { SchemaElement } from 'hyparquet';
import type { CsvCell } from '../csv.ts';
import type { Label } from '../model/classifier.ts';
import type { Timings } from './image-labeler.ts';
import type { ModelRef } from './results.ts';

/**
 * The result contract (docs/decisions/0029-one-result-contract.md): a result's fields,
 * and every shape a result takes derived from them in this one module:
 *
 * - the DynamoDB result item (`resultAttributes`, `resultFromAttributes`),
 * - the JSON line: `printed` (what `label`, `query`, `local run`, `upload --wait` and
 *   `export --format jsonl` print) and `stored` (what the pipeline writes to the results
 *   bucket, the Athena table's rows): the same keys in the same order, with the one
 *   documented difference of `labels` (`resultLine`),
 * - the export's CSV columns and Parquet schema and rows (`RESULT_CSV`, `RESULT_PARQUET`),
 * - the Athena table's columns (`RESULT_ATHENA_COLUMNS`),
 * - the table and CSV columns of `labeler query` (`RESULT_QUERY_COLUMNS`).
 *
 * A new field of ImageResult does not compile until RESULT_FIELDS says how it is stored
 * and whether (and how) it is printed.
 */

/** One labeled (or failed) image: the unit stored in DynamoDB and exported to S3. */
export interface ImageResult {
  readonly bucket: string;
  readonly key: string;
  readonly eTag: string;
  readonly size: number;
  readonly sequencer: string;
  readonly model: ModelRef;
  readonly status: 'ok' | 'failed';
  readonly labels: readonly Label[];
  readonly error?: { readonly code: string; readonly message: string };
  readonly width?: number;
  readonly height?: number;
  readonly format?: string;
  readonly jobId?: string;
  readonly timings: Timings;
  readonly labeledAt: string;
}

/**
 * Which JSON line: `printed` for people and programs reading the CLI (scores rounded to
 * six decimals; `labels` only when ok), `stored` for the results bucket (scores as the
 * model gave them; `labels` always, empty for a failed image, so Athena's column is an
 * array on every row).
 */
export type LineForm = 'printed' | 'stored';

/** A table or CSV column of `labeler query`; the shape cli/formats.ts's `Column` takes. */
export interface ResultColumn {
  readonly header: string;
  readonly value: (r: ImageResult) => string | number | undefined;
  readonly maxWidth?: number;
  readonly keep?: 'start' | 'end';
  readonly align?: 'left' | 'right';
}

/** One key of the JSON line, and the columns every format made from the line gives it. */
interface LineKey {
  /** The JSON key, the same in both forms; Athena's column is its lower case. */
  readonly name: string;
  /** Its value in a line; undefined leaves the key out of that line. */
  readonly value: (r: ImageResult, form: LineForm) => unknown;
  /** The Athena (Hive) column; `partition` when the object key's path carries it. */
  readonly athena: { readonly type: string; readonly comment: string } | 'partition';
  /** The Parquet column's schema elements (the first is named `name`) and its value from the printed one. */
  readonly parquet: {
    readonly schema: readonly SchemaElement[];
    readonly value?: (printed: unknown) => unknown;
  };
  /** The export's CSV columns. */
  readonly csv: ReadonlyArray<{ readonly header: string; readonly value: (r: ImageResult) => CsvCell }>;
  /** `labeler query`'s table and CSV columns. */
  readonly query: readonly ResultColumn[];
}

/** How one field of ImageResult is stored in DynamoDB and printed. */
interface FieldContract<K extends keyof ImageResult> {
  /** Its attributes in the DynamoDB result item, and its value read back (undefined: absent). */
  readonly item: {
    readonly write: (r: ImageResult) => Record<string, unknown>;
    readonly read: (item: Readonly<Record<string, unknown>>) => ImageResult[K] | undefined;
  };
  /** Its keys in the JSON line; none keeps it a storage detail, out of every printed shape. */
  readonly line: readonly LineKey[];
}

type Contract = { readonly [K in keyof ImageResult]-?: FieldContract<K> };

/** A score as every printed result carries it: six decimals, enough to rank, without float noise. */
export function printedScore(score: number): number {
  return Math.round(score * 1e6) / 1e6;
}

/** Labels as the JSON Lines contract prints them (`label`, `local run`, `query`). */
export function printedLabels(labels: readonly Label[]): Label[] {
  return labels.map((l) => ({ label: l.label, score: printedScore(l.score) }));
}

/**
 * What an image's labeling printed: `labels` when ok, `error` when failed. A stored
 * result's (`printedResult`) and `labeler label`'s row for a local file (`file` and this).
 */
export function printedOutcome(o: {
  readonly status: 'ok' | 'failed';
  readonly labels?: readonly Label[];
  readonly error?: { readonly code: string; readonly message: string } | undefined;
}): { status: 'ok' | 'failed'; labels?: Label[]; error?: { code: string; message: string } } {
  if (o.status === 'ok') return { status: 'ok', labels: printedLabels(o.labels ?? []) };
  return o.error ? { status: 'failed', error: o.error } : { status: 'failed' };
}

const utf8 = (name: string, required: boolean): SchemaElement => ({
  name,
  type: 'BYTE_ARRAY',
  converted_type: 'UTF8',
  repetition_type: required ? 'REQUIRED' : 'OPTIONAL',
});

/** A line key holding text, the same in every form; `required` unless it may be absent. */
function textKey(
  name: string,
  value: (r: ImageResult) => string | undefined,
  athena: string | 'partition',
  query: Omit<ResultColumn, 'header' | 'value'>,
  required = true,
): LineKey {
  return {
    name,
    value,
    athena: athena === 'partition' ? athena : { type: 'string', comment: athena },
    parquet: { schema: [utf8(name, required)] },
    csv: [{ header: name, value }],
    query: [{ header: name, value, ...query }],
  };
}

/** A stored attribute of the same name, written when present. */
function attribute<K extends keyof ImageResult>(
  name: K,
  read: (value: unknown) => ImageResult[K],
): FieldContract<K>['item'] {
  return {
    write: (r) => (r[name] === undefined ? {} : { [name]: r[name] }),
    read: (item) => (item[name] === undefined ? undefined : read(item[name])),
  };
}

const top = (r: ImageResult) => r.labels[0];

const RESULT_FIELDS: Contract = {
  bucket: {
    item: attribute('bucket', String),
    line: [textKey('bucket', (r) => r.bucket, 'images bucket', { maxWidth: 24 })],
  },
  key: {
    item: attribute('key', String),
    line: [textKey('key', (r) => r.key, 'object key of the image', { keep: 'end', maxWidth: 48 })],
  },
  eTag: {
    item: attribute('eTag', String),
    line: [textKey('eTag', (r) => r.eTag, 'eTag of the image version labeled', { maxWidth: 12 })],
  },
  size: { item: { write: (r) => ({ size: r.size }), read: (item) => Number(item.size ?? 0) }, line: [] },
  sequencer: {
    // The store writes it left-padded (paddedSequencer), so that it compares as a string.
    item: { write: (r) => ({ sequencer: r.sequencer }), read: (item) => String(item.sequencer ?? '0') },
    line: [],
  },
  model: {
    item: {
      write: (r) => ({ modelId: r.model.id, modelVersion: r.model.version }),
      read: (item) => ({ id: String(item.modelId), version: String(item.modelVersion) }),
    },
    line: [
      textKey('model', (r) => r.model.id, 'partition', { maxWidth: 24 }),
      textKey('modelVersion', (r) => r.model.version, 'model version', { maxWidth: 12 }),
    ],
  },
  status: {
    item: { write: (r) => ({ status: r.status }), read: (item) => (item.status === 'ok' ? 'ok' : 'failed') },
    line: [textKey('status', (r) => r.status, 'ok or failed', {})],
  },
  labels: {
    item: {
      write: (r) => ({ labels: r.labels.map((l) => ({ label: l.label, score: l.score })) }),
      read: (item) =>
        ((item.labels as Label[] | undefined) ?? []).map((l) => ({
          label: String(l.label),
          score: Number(l.score),
        })),
    },
    line: [
      {
        name: 'labels',
        value: (r, form) => (form === 'stored' ? r.labels : printedOutcome(r).labels),
        athena: {
          type: 'array<struct<label:string,score:double>>',
          comment: 'top-k labels, best first; empty when failed',
        },
        // A standard three-level LIST of STRUCT(label, score); null for a failed image.
        parquet: {
          schema: [
            { name: 'labels', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
            { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
            { name: 'element', repetition_type: 'REQUIRED', num_children: 2 },
            utf8('label', true),
            { name: 'score', type: 'DOUBLE', repetition_type: 'REQUIRED' },
          ],
        },
        // One JSON column holding what the line holds (k is a deployment setting, so
        // label_1..label_k columns could not be fixed before the first row), and the
        // first label apart for sorting and pivoting (decision 0018).
        csv: [
          { header: 'top_label', value: (r) => printedOutcome(r).labels?.[0]?.label },
          { header: 'top_score', value: (r) => printedOutcome(r).labels?.[0]?.score },
          {
            header: 'labels',
            value: (r) => {
              const { labels } = printedOutcome(r);
              return labels ? JSON.stringify(labels) : undefined;
            },
          },
        ],
        query: [
          { header: 'label', value: (r) => top(r)?.label, maxWidth: 24 },
          {
            header: 'score',
            value: (r) => {
              const first = top(r);
              return first ? printedScore(first.score).toFixed(6) : undefined;
            },
            align: 'right',
          },
          {
            header: 'labels',
            value: (r) => r.labels.map((l) => `${l.label}:${printedScore(l.score).toFixed(6)}`).join(' '),
            maxWidth: 40,
          },
        ],
      },
    ],
  },
  error: {
    item: {
      write: (r) => (r.error ? { errorCode: r.error.code, errorMessage: r.error.message } : {}),
      read: (item) =>
        item.errorCode
          ? { code: String(item.errorCode), message: String(item.errorMessage ?? '') }
          : undefined,
    },
    line: [
      {
        name: 'error',
        value: (r) => printedOutcome(r).error,
        athena: { type: 'struct<code:string,message:string>', comment: 'why it failed; null when ok' },
        parquet: {
          schema: [
            { name: 'error', repetition_type: 'OPTIONAL', num_children: 2 },
            utf8('code', true),
            utf8('message', true),
          ],
        },
        csv: [
          { header: 'error_code', value: (r) => printedOutcome(r).error?.code },
          { header: 'error_message', value: (r) => printedOutcome(r).error?.message },
        ],
        query: [
          { header: 'errorCode', value: (r) => r.error?.code, maxWidth: 28 },
          { header: 'errorMessage', value: (r) => r.error?.message, maxWidth: 40 },
        ],
      },
    ],
  },
  width: { item: attribute('width', Number), line: [] },
  height: { item: attribute('height', Number), line: [] },
  format: { item: attribute('format', String), line: [] },
  jobId: {
    item: attribute('jobId', String),
    line: [textKey('jobId', (r) => r.jobId, 'labeling job; null for uploads', { maxWidth: 24 }, false)],
  },
  timings: {
    item: { write: (r) => ({ timings: r.timings }), read: (item) => item.timings as Timings },
    line: [],
  },
  labeledAt: {
    item: attribute('labeledAt', String),
    line: [
      {
        ...textKey('labeledAt', (r) => r.labeledAt, 'ISO 8601 UTC time of labeling', {}),
        // Athena keeps the ISO 8601 string (from_iso8601_timestamp in a query), so no SerDe
        // timestamp format can misread it; Parquet has a real timestamp type.
        parquet: {
          schema: [
            {
              name: 'labeledAt',
              type: 'INT64',
              repetition_type: 'REQUIRED',
              logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' },
            },
          ],
          value: (printed) => new Date(String(printed)),
        },
      },
    ],
  },
};

const LINE_KEYS: readonly LineKey[] = Object.values(RESULT_FIELDS).flatMap(
  (f: FieldContract<keyof ImageResult>) => f.line,
);

/** The JSON line of a result, in either form; keys in the contract's order, absent values left out. */
export function resultLine(r: ImageResult, form: LineForm): Record<string, unknown> {
  const line: Record<string, unknown> = {};
  for (const key of LINE_KEYS) {
    const value = key.value(r, form);
    if (value !== undefined) line[key.name] = value;
  }
  return line;
}

/**
 * A stored result as the CLI prints it, one JSON line: `labels` when ok, `error` when
 * failed, as `labeler label` prints a file's outcome.
 */
export function printedResult(r: ImageResult): Record<string, unknown> {
  return resultLine(r, 'printed');
}

/** The DynamoDB result item's attributes of a result: every field, none of the store's keys. */
export function resultAttributes(r: ImageResult): Record<string, unknown> {
  return Object.assign(
    {},
    ...Object.values(RESULT_FIELDS).map((f: FieldContract<keyof ImageResult>) => f.item.write(r)),
  );
}

/** A result read back from its item's attributes (`resultAttributes`). */
export function resultFromAttributes(item: Readonly<Record<string, unknown>>): ImageResult {
  const result: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(RESULT_FIELDS) as Array<
    [string, FieldContract<keyof ImageResult>]
  >) {
    const value = field.item.read(item);
    if (value !== undefined) result[name] = value;
  }
  return result as unknown as ImageResult;
}

/** The export's CSV: its header and a result's cells (scores as printed). */
export const RESULT_CSV = {
  columns: LINE_KEYS.flatMap((k) => k.csv.map((c) => c.header)),
  cells: (r: ImageResult): CsvCell[] => LINE_KEYS.flatMap((k) => k.csv.map((c) => c.value(r))),
};

/** The export's Parquet file: the schema (the printed line's keys, typed) and a result's row. */
export const RESULT_PARQUET = {
  schema: [
    { name: 'schema', num_children: LINE_KEYS.length },
    ...LINE_KEYS.flatMap((k) => k.parquet.schema),
  ] as readonly SchemaElement[],
  columns: LINE_KEYS.map((k) => k.name),
  row: (r: ImageResult): Record<string, unknown> => {
    const printed = printedResult(r);
    return Object.fromEntries(
      LINE_KEYS.map((k) => {
        const value = printed[k.name];
        if (value === undefined) return [k.name, null];
        return [k.name, k.parquet.value ? k.parquet.value(value) : value];
      }),
    );
  },
};

/**
 * The Athena table's data columns over the stored lines: each line key in lower case
 * (Glue keeps names in lower case; the OpenX SerDe matches keys case-insensitively), less
 * the keys the object key's path carries as partitions (`model`).
 */
export const RESULT_ATHENA_COLUMNS: ReadonlyArray<{ name: string; type: string; comment: string }> =
  LINE_KEYS.flatMap((k) => (k.athena === 'partition' ? [] : [{ name: k.name.toLowerCase(), ...k.athena }]));

/** `labeler query`'s columns for a result, table and CSV. */
export const RESULT_QUERY_COLUMNS: readonly ResultColumn[] = LINE_KEYS.flatMap((k) => k.query);
