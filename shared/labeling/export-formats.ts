import type { SchemaElement } from 'hyparquet';
import { ByteWriter, parquetWriteRows } from 'hyparquet-writer';
import { csvLine } from '../csv.ts';
import type { Label } from '../model/classifier.ts';
import { type ImageResult, printedResult } from './results.ts';

/** Output formats of `labeler export` (docs/decisions/0018-export-formats.md). */
export const EXPORT_FORMATS = ['jsonl', 'csv', 'parquet'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const CONTENT_TYPES: Readonly<Record<ExportFormat, string>> = {
  jsonl: 'application/x-ndjson',
  csv: 'text/csv; charset=utf-8',
  parquet: 'application/vnd.apache.parquet',
};

/** Takes the next bytes of the file; resolves when it can take more (backpressure). */
export type ByteSink = (chunk: Uint8Array) => Promise<void>;

/** The fields of one printed result (`printedResult`), which every format carries. */
interface PrintedRow {
  bucket: string;
  key: string;
  eTag: string;
  model: string;
  modelVersion: string;
  status: 'ok' | 'failed';
  labels?: Label[];
  error?: { code: string; message: string };
  jobId?: string;
  labeledAt: string;
}

/**
 * CSV columns. Top-k labels are one JSON column, `labels`, holding exactly what the JSON
 * Lines row holds: k is a deployment setting (TOP_K), so a fixed label_1..label_k header
 * written before the first row could not hold a result labeled with a larger k.
 * `top_label` and `top_score` are the first of them, for sorting and pivoting without
 * parsing JSON; `error` is flattened into `error_code` and `error_message`.
 */
export const CSV_COLUMNS = [
  'bucket',
  'key',
  'eTag',
  'model',
  'modelVersion',
  'status',
  'top_label',
  'top_score',
  'labels',
  'error_code',
  'error_message',
  'jobId',
  'labeledAt',
] as const;

const string = (name: string, required = true): SchemaElement => ({
  name,
  type: 'BYTE_ARRAY',
  converted_type: 'UTF8',
  repetition_type: required ? 'REQUIRED' : 'OPTIONAL',
});

/**
 * The Parquet schema: the printed result's fields with declared types. `labels` is a
 * standard three-level LIST of STRUCT(label STRING, score DOUBLE), null for a failed
 * image (as the JSON row has no `labels`); `error` a STRUCT, null for an ok one;
 * `labeledAt` a UTC TIMESTAMP in milliseconds.
 */
export const PARQUET_SCHEMA: readonly SchemaElement[] = [
  { name: 'schema', num_children: 10 },
  string('bucket'),
  string('key'),
  string('eTag'),
  string('model'),
  string('modelVersion'),
  string('status'),
  { name: 'labels', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', repetition_type: 'REQUIRED', num_children: 2 },
  string('label'),
  { name: 'score', type: 'DOUBLE', repetition_type: 'REQUIRED' },
  { name: 'error', repetition_type: 'OPTIONAL', num_children: 2 },
  string('code'),
  string('message'),
  string('jobId', false),
  {
    name: 'labeledAt',
    type: 'INT64',
    repetition_type: 'REQUIRED',
    logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' },
  },
];

/** The top-level Parquet columns, in order. */
const PARQUET_COLUMNS = [
  'bucket',
  'key',
  'eTag',
  'model',
  'modelVersion',
  'status',
  'labels',
  'error',
  'jobId',
  'labeledAt',
] as const;

/**
 * Rows per Parquet row group: what the writer holds in memory before it hands the bytes
 * on (about 2-5 MB of results), and few enough groups that readers skip well.
 */
const PARQUET_ROW_GROUP = 10_000;

/** Text formats hand their bytes on in chunks of about this size rather than line by line. */
const TEXT_CHUNK = 64 * 1024;

/**
 * Encodes results in `format` and hands the bytes to `sink` as they are made; holds at
 * most one chunk (text) or one row group (Parquet). Returns the number of rows.
 */
export async function encodeResults(
  format: ExportFormat,
  results: AsyncIterable<ImageResult>,
  sink: ByteSink,
  onRow: (rows: number) => void = () => undefined,
): Promise<number> {
  let rows = 0;
  const printed = async function* () {
    for await (const result of results) {
      yield printedResult(result) as unknown as PrintedRow;
      onRow(++rows);
    }
  };
  if (format === 'parquet') {
    await writeParquet(printed(), sink);
    return rows;
  }
  let text = format === 'csv' ? csvLine(CSV_COLUMNS) : '';
  for await (const row of printed()) {
    text += format === 'csv' ? csvLine(csvFields(row)) : `${JSON.stringify(row)}\n`;
    if (text.length >= TEXT_CHUNK) {
      await sink(Buffer.from(text, 'utf8'));
      text = '';
    }
  }
  if (text.length > 0) await sink(Buffer.from(text, 'utf8'));
  return rows;
}

function csvFields(row: PrintedRow): Array<string | number | undefined> {
  const top = row.labels?.[0];
  return [
    row.bucket,
    row.key,
    row.eTag,
    row.model,
    row.modelVersion,
    row.status,
    top?.label,
    top?.score,
    row.labels ? JSON.stringify(row.labels) : undefined,
    row.error?.code,
    row.error?.message,
    row.jobId,
    row.labeledAt,
  ];
}

/** A ByteWriter that hands each row group's bytes to the sink instead of keeping the file. */
class SinkWriter extends ByteWriter {
  readonly #sink: ByteSink;

  constructor(sink: ByteSink) {
    super(1024 * 1024);
    this.#sink = sink;
  }

  async flush(): Promise<void> {
    // The buffer is reused for the next group: copy the bytes out.
    const bytes = this.getBytes().slice();
    this.index = 0;
    if (bytes.length > 0) await this.#sink(bytes);
  }

  override finish(): Promise<void> {
    return this.flush();
  }
}

async function writeParquet(rows: AsyncIterable<PrintedRow>, sink: ByteSink): Promise<void> {
  const parquetRows = async function* () {
    for await (const row of rows) {
      yield {
        bucket: row.bucket,
        key: row.key,
        eTag: row.eTag,
        model: row.model,
        modelVersion: row.modelVersion,
        status: row.status,
        labels: row.labels ?? null,
        error: row.error ?? null,
        jobId: row.jobId ?? null,
        labeledAt: new Date(row.labeledAt),
      };
    }
  };
  await parquetWriteRows({
    writer: new SinkWriter(sink),
    schema: [...PARQUET_SCHEMA],
    columns: PARQUET_COLUMNS.map((name) => ({ name })),
    rows: parquetRows(),
    rowGroupSize: PARQUET_ROW_GROUP,
    createdBy: 'labeler export (hyparquet-writer)',
  });
}
