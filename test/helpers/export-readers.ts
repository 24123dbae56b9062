/**
 * Readers for `labeler export` files that share no code with its writers: Parquet through
 * DuckDB (its own C++ Parquet reader, from npm's prebuilt @duckdb/node-api), CSV through a
 * small RFC 4180 parser written here.
 */

/** A column as DuckDB sees it, and the Parquet physical and logical types it read. */
export interface ParquetColumn {
  readonly name: string;
  /** DuckDB's type: `VARCHAR`, `DOUBLE`, `STRUCT("label" VARCHAR, score DOUBLE)[]`, ... */
  readonly type: string;
}

async function duckdb() {
  try {
    return await import('@duckdb/node-api');
  } catch (error) {
    throw new Error(
      'the independent Parquet reader @duckdb/node-api is missing: run "npm ci" (it is a devDependency)',
      { cause: error },
    );
  }
}

function sqlString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** Runs SQL over one Parquet file, named `file` in the query. */
export async function queryParquet(path: string, sql: string): Promise<Array<Record<string, unknown>>> {
  const { DuckDBInstance } = await duckdb();
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    await connection.run(`CREATE VIEW file AS SELECT * FROM read_parquet(${sqlString(path)})`);
    const reader = await connection.runAndReadAll(sql);
    return reader.getRowObjectsJS() as Array<Record<string, unknown>>;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** The columns DuckDB reads from the file, in order. */
export async function parquetColumns(path: string): Promise<ParquetColumn[]> {
  const rows = await queryParquet(path, 'DESCRIBE SELECT * FROM file');
  return rows.map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
}

/** The file's Parquet schema elements as DuckDB decodes them: physical, converted and logical types. */
export async function parquetSchema(path: string): Promise<Array<Record<string, unknown>>> {
  const { DuckDBInstance } = await duckdb();
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(
      `SELECT name, type, converted_type, logical_type, repetition_type FROM parquet_schema(${sqlString(path)})`,
    );
    return reader.getRowObjectsJS() as Array<Record<string, unknown>>;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/**
 * The rows of an export's Parquet file in the shape `labeler query` prints: null columns
 * absent, labeledAt as an ISO string.
 */
export async function parquetRows(path: string): Promise<Array<Record<string, unknown>>> {
  const rows = await queryParquet(
    path,
    'SELECT bucket, key, eTag, model, modelVersion, status, labels, error, jobId, epoch_ms(labeledAt) AS labeledAtMs FROM file',
  );
  return rows.map(({ labels, error, jobId, labeledAtMs, ...rest }) => ({
    ...rest,
    ...(labels === null ? {} : { labels }),
    ...(error === null ? {} : { error }),
    ...(jobId === null ? {} : { jobId }),
    labeledAt: new Date(Number(labeledAtMs)).toISOString(),
  }));
}

/** RFC 4180: quoted fields may hold commas, quotes (doubled) and line breaks; records end with CRLF or LF. */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      if (c === '\r' && text[i + 1] === '\n') i++;
    } else field += c;
    i++;
  }
  if (field !== '' || record.length > 0) {
    record.push(field);
    records.push(record);
  }
  return records;
}

/** CSV records as objects keyed by the header. */
export function csvObjects(text: string): Array<Record<string, string>> {
  const [header, ...records] = parseCsv(text);
  if (!header) throw new Error('the CSV has no header');
  return records.map((r) => {
    if (r.length !== header.length)
      throw new Error(`a record has ${r.length} fields, the header ${header.length}`);
    return Object.fromEntries(header.map((name, i) => [name, r[i] as string]));
  });
}

/**
 * A CSV export row in the shape `labeler query` prints, from the columns alone: `labels`
 * parsed from its JSON column, `error` from error_code and error_message. top_label and
 * top_score are checked against the labels and dropped.
 */
export function printedFromCsv(row: Record<string, string>): Record<string, unknown> {
  const labels = row.labels ? (JSON.parse(row.labels) as Array<{ label: string; score: number }>) : undefined;
  const top = labels?.[0];
  if ((top?.label ?? '') !== row.top_label || (top ? String(top.score) : '') !== row.top_score) {
    throw new Error(`top_label/top_score ${row.top_label}/${row.top_score} differ from labels ${row.labels}`);
  }
  return {
    bucket: row.bucket,
    key: row.key,
    eTag: row.eTag,
    model: row.model,
    modelVersion: row.modelVersion,
    status: row.status,
    ...(labels ? { labels } : {}),
    ...(row.error_code ? { error: { code: row.error_code, message: row.error_message } } : {}),
    ...(row.jobId ? { jobId: row.jobId } : {}),
    labeledAt: row.labeledAt,
  };
}
