import type { SchemaElement } from 'hyparquet';
import { ByteWriter, parquetWriteRows } from 'hyparquet-writer';
import { csvLine } from '../csv.ts';
import { type ImageResult, printedResult, RESULT_CSV, RESULT_PARQUET } from './result-contract.ts';

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

/**
 * CSV columns (the result contract's `RESULT_CSV`): the printed result's fields, top-k
 * labels as one JSON column `labels` plus `top_label` and `top_score`, `error` flattened
 * into `error_code` and `error_message` (decision 0018).
 */
export const CSV_COLUMNS: readonly string[] = RESULT_CSV.columns;

/**
 * The Parquet schema (the result contract's `RESULT_PARQUET`): the printed result's
 * fields with declared types. `labels` is a standard three-level LIST of STRUCT(label
 * STRING, score DOUBLE), null for a failed image (as the JSON row has no `labels`);
 * `error` a STRUCT, null for an ok one; `labeledAt` a UTC TIMESTAMP in milliseconds.
 */
export const PARQUET_SCHEMA: readonly SchemaElement[] = RESULT_PARQUET.schema;

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
  const counted = async function* () {
    for await (const result of results) {
      yield result;
      onRow(++rows);
    }
  };
  if (format === 'parquet') {
    await writeParquet(counted(), sink);
    return rows;
  }
  let text = format === 'csv' ? csvLine(CSV_COLUMNS) : '';
  for await (const result of counted()) {
    text +=
      format === 'csv' ? csvLine(RESULT_CSV.cells(result)) : `${JSON.stringify(printedResult(result))}\n`;
    if (text.length >= TEXT_CHUNK) {
      await sink(Buffer.from(text, 'utf8'));
      text = '';
    }
  }
  if (text.length > 0) await sink(Buffer.from(text, 'utf8'));
  return rows;
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

async function writeParquet(results: AsyncIterable<ImageResult>, sink: ByteSink): Promise<void> {
  const parquetRows = async function* () {
    for await (const result of results) yield RESULT_PARQUET.row(result);
  };
  await parquetWriteRows({
    writer: new SinkWriter(sink),
    schema: [...PARQUET_SCHEMA],
    columns: RESULT_PARQUET.columns.map((name) => ({ name })),
    rows: parquetRows(),
    rowGroupSize: PARQUET_ROW_GROUP,
    createdBy: 'labeler export (hyparquet-writer)',
  });
}
