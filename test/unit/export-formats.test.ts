import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UsageError } from '../../cli/args.ts';
import { exportCommand } from '../../cli/export-command.ts';
import { csvLine } from '../../shared/csv.ts';
import { fileDestination } from '../../shared/labeling/export-destination.ts';
import { CSV_COLUMNS, type ExportFormat, encodeResults } from '../../shared/labeling/export-formats.ts';
import { type ImageResult, printedResult } from '../../shared/labeling/results.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { csvObjects, parquetRows, parseCsv, printedFromCsv } from '../helpers/export-readers.ts';

const base = {
  bucket: 'labeler-images',
  eTag: 'e1',
  size: 10,
  sequencer: '0A',
  model: { id: 'fashion-efficientnet', version: '1.0.0' },
  timings: { readMs: 1, preprocessMs: 1, inferMs: 1, batchSize: 1 },
  labeledAt: '2026-11-27T10:11:12.345Z',
};

const RESULTS: ImageResult[] = [
  {
    ...base,
    key: 'images/a,b "c"\nd.png',
    status: 'ok',
    labels: [
      { label: 'Bag', score: 0.987654321 },
      { label: 'T-shirt/top', score: 0.0123456789 },
    ],
    jobId: 'j-1',
  },
  { ...base, key: ' façade 日本 +.png', status: 'ok', labels: [{ label: 'Sandal', score: 1 }] },
  {
    ...base,
    key: 'images/broken.png',
    status: 'failed',
    labels: [],
    error: { code: 'image/decode-failed', message: 'bad "header", then\r\nmore' },
  },
];

async function* stream<T>(items: Iterable<T>): AsyncGenerator<T> {
  yield* items;
}

async function encode(format: ExportFormat, results: Iterable<ImageResult>) {
  const chunks: Uint8Array[] = [];
  const rows = await encodeResults(format, stream(results), async (chunk) => {
    chunks.push(chunk);
  });
  return { rows, chunks, bytes: Buffer.concat(chunks) };
}

describe('export formats: each encodes the printed result, read back by an independent reader', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-export-unit-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const printed = RESULTS.map((r) => printedResult(r));

  it('jsonl: one printed result per line, scores rounded', async () => {
    const { rows, bytes } = await encode('jsonl', RESULTS);
    assert.equal(rows, RESULTS.length);
    const lines = bytes.toString('utf8').split('\n');
    assert.equal(lines.pop(), '', 'ends with a newline');
    assert.deepEqual(
      lines.map((l) => JSON.parse(l)),
      printed,
    );
    assert.equal(
      (JSON.parse(lines[0] as string) as { labels: Array<{ score: number }> }).labels[0]?.score,
      0.987654,
    );
  });

  it('csv: a header, then RFC 4180 records that quote commas, quotes, line breaks and edge spaces', async () => {
    const text = (await encode('csv', RESULTS)).bytes.toString('utf8');
    assert.deepEqual(parseCsv(text)[0], [...CSV_COLUMNS]);
    assert.deepEqual(csvObjects(text).map(printedFromCsv), printed);
    assert.ok(text.includes('" façade 日本 +.png"'), 'a leading space is quoted');
    assert.ok(text.endsWith('\r\n'));
  });

  it('csvLine: quotes only what needs it; an absent value is an empty field', () => {
    assert.equal(csvLine(['a', 'b c', 0.5, undefined, '']), 'a,b c,0.5,,\r\n');
    assert.equal(
      csvLine(['x,y', 'say "hi"', 'two\nlines', 'tail ']),
      '"x,y","say ""hi""","two\nlines","tail "\r\n',
    );
  });

  it('csv: neutralises cells a spreadsheet would run as formulas (OWASP), keeps numbers', () => {
    assert.equal(
      csvLine(['=cmd|calc.png', '+1', '-2', '@SUM(A1)', '\tx', '\rx', 'a=b', -0.5]),
      `"'=cmd|calc.png","'+1","'-2","'@SUM(A1)","'\tx","'\rx",a=b,-0.5\r\n`,
    );
  });

  it('parquet: DuckDB reads back the printed results', async () => {
    const path = join(dir, 'small.parquet');
    await writeFile(path, (await encode('parquet', RESULTS)).bytes);
    assert.deepEqual(await parquetRows(path), printed);
  });

  it('parquet with no results is a valid file with no rows', async () => {
    const path = join(dir, 'empty.parquet');
    const { rows, bytes } = await encode('parquet', []);
    assert.equal(rows, 0);
    await writeFile(path, bytes);
    assert.deepEqual(await parquetRows(path), []);
  });

  it('parquet streams: a large export reaches the sink one row group at a time, not in one piece', async () => {
    const count = 20_001;
    const many = Array.from(
      { length: count },
      (_, i): ImageResult => ({
        ...(RESULTS[i % RESULTS.length] as ImageResult),
        key: `images/${i}.png`,
      }),
    );
    const { rows, chunks, bytes } = await encode('parquet', many);
    assert.equal(rows, count);
    assert.ok(
      chunks.length >= 3,
      `three row groups of at most 10,000 rows each flushed on their own (${chunks.length})`,
    );
    const path = join(dir, 'large.parquet');
    await writeFile(path, bytes);
    const back = await parquetRows(path);
    assert.equal(back.length, count);
    assert.deepEqual(back[count - 1], printedResult(many[count - 1] as ImageResult));
  });
});

describe('export file destination: the whole file or nothing', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-export-dest-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('aborted: no file and no temporary file; the previous file stays', async () => {
    const target = join(dir, 'out.csv');
    await writeFile(target, 'previous\n');
    const destination = await fileDestination(target);
    await destination.write(Buffer.from('half,a\n'));
    await destination.abort();
    await destination.abort();
    assert.deepEqual(await readdir(dir), ['out.csv']);
    assert.equal(await readFile(target, 'utf8'), 'previous\n');
  });

  it('committed: replaces the file whole; abort after commit changes nothing', async () => {
    const target = join(dir, 'out.csv');
    const destination = await fileDestination(target);
    await destination.write(Buffer.from('new,'));
    await destination.write(Buffer.from('file\n'));
    assert.equal(await readFile(target, 'utf8'), 'previous\n', 'nothing under the name before commit');
    await destination.commit();
    await destination.abort();
    assert.deepEqual(await readdir(dir), ['out.csv']);
    assert.equal(await readFile(target, 'utf8'), 'new,file\n');
  });

  it('a folder that does not exist: export/write-failed', async () => {
    await assert.rejects(fileDestination(join(dir, 'missing', 'out.csv')), {
      code: 'export/write-failed',
    });
  });
});

describe('labeler export: usage errors before any stack is opened', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--out', 'x.jsonl'], /exactly one of --label/],
    [['--job', 'j', '--prefix', 'p/', '--out', 'x.jsonl'], /exactly one of --label/],
    // A model folder is read before connecting; the stack's default model needs the stack.
    [
      ['--label', 'Nope', '--model', DEFAULT_MODEL_DIR, '--out', 'x.jsonl'],
      /unknown label "Nope".*"Ankle boot"/,
    ],
    [['--job', 'j', '--out', 'x.txt'], /--format jsonl\|csv\|parquet is required/],
    [['--job', 'j', '--format', 'xml', '--out', 'x.xml'], /--format must be one of jsonl, csv, parquet/],
    [['--job', 'j'], /--out .* is required/],
    [['--job', 'j', '--min-score', '0.5', '--out', 'x.csv'], /--min-score goes with --label/],
    [['--label', 'Bag', '--min-score', '2', '--out', 'x.csv'], /--min-score must be between 0 and 1/],
    [['--job', 'j', '--bucket', 'b', '--out', 'x.csv'], /--bucket goes with --prefix/],
    [['--job', 'j', '--format', 'jsonl', '--out', 's3://bucket-only'], /names no object/],
    [['--job', 'j', '--out', 'x.csv', 'extra'], /unexpected argument "extra"/],
  ];
  for (const [args, message] of cases) {
    it(`export ${args.join(' ')}`, async () => {
      await assert.rejects(exportCommand(args), (error: unknown) => {
        assert.ok(error instanceof UsageError, String(error));
        assert.match(error.message, message);
        return true;
      });
    });
  }
});
