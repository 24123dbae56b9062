import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { s3Destination } from '../../shared/aws/s3-destination.ts';
import { type ExportFormat, PARQUET_SCHEMA } from '../../shared/labeling/export-formats.ts';
import { PACKAGE_ROOT } from '../../shared/paths.ts';
import { RESOURCE_NAMES } from '../../shared/settings.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import {
  csvObjects,
  parquetColumns,
  parquetRows,
  parquetSchema,
  printedFromCsv,
} from '../helpers/export-readers.ts';
import { LabelerProcess, waitForEndpoints } from '../helpers/labeler-process.ts';

const SAMPLES = join(PACKAGE_ROOT, 'models', 'fashion-efficientnet', 'samples');
const PREFIX = 'datasets/export/';
const IMAGES = 24;
/** Keys a CSV must quote and a URL must encode: spaces, +, unicode, comma, quote. */
const ODD_KEYS = [' lead space.png', 'a+b c.png', 'façade 日本.png', 'comma,"quoted".png'];
/** Not an image: the job's one failed row. */
const BROKEN = `${PREFIX}broken, "not" an image.png`;
/** Uploaded after the job: under the prefix, but without a result. */
const LATE = `${PREFIX}zz-late.png`;
const MIN_SCORE = '0.3';

type Row = Record<string, unknown>;

describe('labeler export against a real local stack: every format, every selection, read back', () => {
  let dataDir: string;
  let outDir: string;
  let up: LabelerProcess;
  let clients: AwsClients;
  let jobId = '';
  /** What `labeler query job` prints for the job, by key: the rows every export must reproduce. */
  let expected: Map<string, Row>;
  /** The label most images have first, and the keys `query label` prints for it, best first. */
  let label = '';
  let labelKeys: string[] = [];
  const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir]);
  const outPath = (name: string) => join(outDir, name.replace(/[^\w.-]/g, '_'));

  /** Exports, reads the output back in its own reader and returns the rows in the printed shape. */
  async function exportRows(format: ExportFormat, name: string, ...selection: string[]) {
    const out = outPath(`${name}.${format}`);
    const run = await cli('export', ...selection, '--format', format, '--out', out);
    assert.equal(run.code, 0, run.stderr);
    return { rows: await readBack(format, out), stderr: run.stderr };
  }

  async function readBack(format: ExportFormat, path: string): Promise<Row[]> {
    if (format === 'parquet') return parquetRows(path);
    const text = await readFile(path, 'utf8');
    return format === 'csv' ? csvObjects(text).map(printedFromCsv) : jsonLines(text);
  }

  function assertSameRows(actual: readonly Row[], keys: readonly string[], what: string) {
    assert.deepEqual(
      actual.map((r) => r.key),
      keys,
      `${what}: the keys, in order`,
    );
    for (const row of actual) assert.deepEqual(row, expected.get(String(row.key)), `${what}: ${row.key}`);
  }

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-export-'));
    outDir = await mkdtemp(join(tmpdir(), 'labeler-export-out-'));
    up = new LabelerProcess(['local', 'up', '--data-dir', dataDir]);
    const endpoints = await waitForEndpoints(dataDir, up);
    clients = createAwsClients({ region: endpoints.region, endpoints: endpoints.endpoints, local: true });

    const samples = (await readdir(SAMPLES)).filter((f) => f.endsWith('.png')).sort();
    const objects: Array<[string, Buffer]> = [[BROKEN, Buffer.from('not an image')]];
    for (let i = 0; i < IMAGES; i++) {
      const name = `${String(i).padStart(3, '0')}${ODD_KEYS[i % ODD_KEYS.length]}`;
      objects.push([`${PREFIX}${name}`, await readFile(join(SAMPLES, samples[i] as string))]);
    }
    await Promise.all(
      objects.map(([key, body]) =>
        clients.s3.send(new PutObjectCommand({ Bucket: RESOURCE_NAMES.imagesBucket, Key: key, Body: body })),
      ),
    );
    // Labeled through the real pipeline: a job over the prefix, the classify function, the results table.
    const job = await cli('jobs', 'start', '--prefix', PREFIX, '--mode', 'all', '--wait', '--format', 'json');
    assert.equal(job.code, 0, job.stderr);
    jobId = String(jsonLines(job.stdout)[0]?.jobId);
    await clients.s3.send(
      new PutObjectCommand({
        Bucket: RESOURCE_NAMES.imagesBucket,
        Key: LATE,
        Body: await readFile(join(SAMPLES, samples[0] as string)),
      }),
    );

    const query = await cli('query', 'job', jobId);
    assert.equal(query.code, 0, query.stderr);
    expected = new Map(jsonLines(query.stdout).map((r) => [String(r.key), r]));
    assert.equal(expected.size, IMAGES + 1, 'query job prints one row per image of the job');
    assert.equal(expected.get(BROKEN)?.status, 'failed');

    label = topLabel(expected);
    const hits = await cli('query', 'label', label, '--min-score', MIN_SCORE, '--limit', '1000');
    assert.equal(hits.code, 0, hits.stderr);
    labelKeys = jsonLines(hits.stdout).map((h) => String(h.key));
    assert.ok(labelKeys.length >= 2, `at least two ${label} images score ${MIN_SCORE} (${labelKeys.length})`);
  });

  after(async () => {
    clients?.s3.destroy();
    clients?.sqs.destroy();
    clients?.dynamo.destroy();
    up?.kill('SIGINT');
    await up?.exited;
    await rm(dataDir, { recursive: true, force: true });
    await rm(outDir, { recursive: true, force: true });
  });

  for (const format of ['jsonl', 'csv', 'parquet'] as const) {
    it(`--job, ${format}: exactly the rows "query job" prints`, async () => {
      const { rows, stderr } = await exportRows(format, 'by-job', '--job', jobId);
      assert.equal(rows.length, expected.size);
      assertSameRows(
        [...rows].sort((a, b) => String(a.key).localeCompare(String(b.key))),
        [...expected.keys()].sort((a, b) => a.localeCompare(b)),
        `${format} by job`,
      );
      assert.match(stderr, new RegExp(`exported ${expected.size} results`));
    });

    it(`--prefix, ${format}: every labeled image under the prefix in key order; the unlabeled one counted, not a row`, async () => {
      const { rows, stderr } = await exportRows(format, 'by-prefix', '--prefix', PREFIX);
      // ListObjectsV2 returns keys in UTF-8 byte order.
      const keys = [...expected.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      assertSameRows(rows, keys, `${format} by prefix`);
      assert.match(stderr, /1 image selected had no result for fashion-efficientnet@/);
    });

    it(`--label --min-score, ${format}: the images "query label" returns, best first`, async () => {
      const { rows } = await exportRows(format, 'by-label', '--label', label, '--min-score', MIN_SCORE);
      assertSameRows(rows, labelKeys, `${format} by label ${label}`);
    });
  }

  it('Parquet: DuckDB reads the declared column types', async () => {
    const out = outPath('by-job.parquet'); // written by "--job, parquet"
    assert.deepEqual(await parquetColumns(out), [
      { name: 'bucket', type: 'VARCHAR' },
      { name: 'key', type: 'VARCHAR' },
      { name: 'eTag', type: 'VARCHAR' },
      { name: 'model', type: 'VARCHAR' },
      { name: 'modelVersion', type: 'VARCHAR' },
      { name: 'status', type: 'VARCHAR' },
      { name: 'labels', type: 'STRUCT("label" VARCHAR, score DOUBLE)[]' },
      { name: 'error', type: 'STRUCT(code VARCHAR, message VARCHAR)' },
      { name: 'jobId', type: 'VARCHAR' },
      { name: 'labeledAt', type: 'TIMESTAMP WITH TIME ZONE' },
    ]);
    const schema = new Map((await parquetSchema(out)).map((e) => [String(e.name), e]));
    assert.equal(schema.get('score')?.type, 'DOUBLE');
    assert.equal(schema.get('labeledAt')?.type, 'INT64');
    assert.match(String(schema.get('labeledAt')?.logical_type), /Timestamp.*isAdjustedToUTC=1.*MILLIS/i);
    assert.equal(schema.get('labels')?.converted_type, 'LIST');
    assert.equal(schema.get('key')?.converted_type, 'UTF8');
    assert.equal(schema.get('key')?.repetition_type, 'REQUIRED');
    assert.equal(schema.get('jobId')?.repetition_type, 'OPTIONAL');
    assert.equal(schema.size, PARQUET_SCHEMA.length, 'every declared schema element, no other');
  });

  it('--out s3://: the object on the stack reads back; the content type says the format', async () => {
    for (const format of ['jsonl', 'parquet'] as const) {
      const key = `exports/${jobId}.${format}`;
      const run = await cli('export', '--job', jobId, '--out', `s3://${RESOURCE_NAMES.resultsBucket}/${key}`);
      assert.equal(run.code, 0, run.stderr);
      const object = await clients.s3.send(
        new GetObjectCommand({ Bucket: RESOURCE_NAMES.resultsBucket, Key: key }),
      );
      const local = outPath(`from-s3.${format}`);
      await writeFile(local, await (object.Body?.transformToByteArray() ?? new Uint8Array()));
      const rows = await readBack(format, local);
      assert.equal(rows.length, expected.size);
      for (const row of rows) assert.deepEqual(row, expected.get(String(row.key)));
      assert.match(String(object.ContentType), format === 'jsonl' ? /ndjson/ : /parquet/);
    }
  });

  it('an S3 export that fails or is aborted leaves no object', async () => {
    const missing = await cli('export', '--job', jobId, '--out', 's3://no-such-bucket/x.jsonl');
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /\[aws\/request-failed\] S3 upload s3:\/\/no-such-bucket\/x\.jsonl.*NoSuchBucket/,
    );

    const key = 'exports/aborted.jsonl';
    const destination = s3Destination(
      clients.s3,
      { bucket: RESOURCE_NAMES.resultsBucket, key },
      'application/x-ndjson',
    );
    await destination.write(Buffer.from('{"half":"a row"}\n'));
    await destination.abort();
    await assert.rejects(
      clients.s3.send(new HeadObjectCommand({ Bucket: RESOURCE_NAMES.resultsBucket, Key: key })),
      (error: Error) => error.name === 'NotFound',
    );
  });

  it('a failed file export leaves the old file as it was and no temporary file; a good one replaces it', async () => {
    const out = outPath('kept.jsonl');
    await writeFile(out, 'the previous export\n');
    const run = await cli('export', '--job', 'no-such-job', '--out', out);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /\[job\/not-found\]/);
    assert.equal(await readFile(out, 'utf8'), 'the previous export\n');
    assert.deepEqual(
      (await readdir(outDir)).filter((f) => f.endsWith('.tmp')),
      [],
    );

    const replaced = await cli('export', '--job', jobId, '--out', out);
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.equal(jsonLines(await readFile(out, 'utf8')).length, expected.size);
  });

  it('--out - writes JSON Lines to standard output', async () => {
    const run = await cli('export', '--job', jobId, '--format', 'jsonl', '--out', '-');
    assert.equal(run.code, 0, run.stderr);
    const rows = jsonLines(run.stdout);
    assert.equal(rows.length, expected.size);
    for (const row of rows) assert.deepEqual(row, expected.get(String(row.key)));
  });

  it('a usage error exits 2 with the message and the help', async () => {
    const run = await cli('export', '--label', 'Nope', '--out', outPath('x.jsonl'));
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /unknown label "Nope".*"Ankle boot"/);
    assert.doesNotMatch(run.stderr, /Usage:/);
    assert.match(run.stderr, /see "labeler export --help"\n$/);
  });
});

/** The label most images of the job have first. */
function topLabel(rows: ReadonlyMap<string, Row>): string {
  const counts = new Map<string, number>();
  for (const row of rows.values()) {
    const top = (row.labels as Array<{ label: string }> | undefined)?.[0]?.label;
    if (top) counts.set(top, (counts.get(top) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'Bag';
}
