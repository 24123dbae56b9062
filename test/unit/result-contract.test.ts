import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RowWriter } from '../../cli/formats.ts';
import { jsonRow } from '../../cli/label-command.ts';
import { exportLine } from '../../shared/labeling/classify-records.ts';
import { type ExportFormat, encodeResults } from '../../shared/labeling/export-formats.ts';
import {
  type ImageResult,
  printedLabels,
  RESULT_ATHENA_COLUMNS,
  RESULT_QUERY_COLUMNS,
  resultAttributes,
  resultFromAttributes,
} from '../../shared/labeling/result-contract.ts';
import { printedResult } from '../../shared/labeling/results.ts';
import { RESULTS_LINES_TABLE } from '../../shared/labeling/results-table.ts';
import { paddedSequencer } from '../../shared/labeling/s3-event.ts';
import { parseCsv } from '../helpers/export-readers.ts';

const base = {
  bucket: 'labeler-images',
  eTag: 'e1',
  size: 10,
  sequencer: paddedSequencer('0A'),
  model: { id: 'fashion-efficientnet', version: '1.0.0' },
  timings: { readMs: 1, preprocessMs: 2, inferMs: 3, batchSize: 4 },
  labeledAt: '2026-11-27T10:11:12.345Z',
};

/** A key with a comma, a quote, a line break, a leading `=` and a trailing space: every quoting rule at once. */
const HOSTILE_KEY = '=HYPERLINK("x"),\nb ';

const RESULTS: ImageResult[] = [
  {
    ...base,
    key: 'images/ok.png',
    status: 'ok',
    labels: [
      { label: 'Bag', score: 0.987654321 },
      { label: 'T-shirt/top', score: 0.0123456789 },
    ],
    width: 28,
    height: 28,
    format: 'png',
    jobId: 'j-1',
  },
  {
    ...base,
    key: HOSTILE_KEY,
    status: 'ok',
    labels: [{ label: 'Sandal', score: 1 }],
    width: 1,
    height: 2,
    format: 'jpeg',
  },
  {
    ...base,
    key: 'images/broken.png',
    status: 'failed',
    labels: [],
    error: { code: 'image/decode-failed', message: 'bad "header", then\r\nmore' },
    jobId: 'j-1',
  },
];

async function* stream<T>(items: Iterable<T>): AsyncGenerator<T> {
  yield* items;
}

async function exported(format: ExportFormat, results: Iterable<ImageResult>): Promise<string> {
  const chunks: Uint8Array[] = [];
  await encodeResults(format, stream(results), async (chunk) => {
    chunks.push(chunk);
  });
  return Buffer.concat(chunks).toString('utf8');
}

/** What `labeler query --format csv` writes for these results (query-command.ts's resultWriter). */
function queryCsv(results: readonly ImageResult[]): string {
  let text = '';
  const out = new RowWriter<ImageResult>({
    format: 'csv',
    columns: RESULT_QUERY_COLUMNS,
    json: printedResult,
    out: (t) => (text += t),
  });
  for (const r of results) out.write(r);
  out.end();
  return text;
}

describe('one result contract: every shape of a result comes from one definition', () => {
  it('the S3 line and `export --format jsonl` have the same keys in the same order; labels differ only as documented', async () => {
    const exportedLines = (await exported('jsonl', RESULTS))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(exportedLines.length, RESULTS.length);
    RESULTS.forEach((result, i) => {
      const s3 = JSON.parse(JSON.stringify(exportLine(result))) as Record<string, unknown>;
      const printed = exportedLines[i] as Record<string, unknown>;
      // The documented difference (README, "Export and Athena"): the stored line keeps the
      // model's scores and an empty `labels` for a failed image; the printed one rounds
      // scores to six decimals and has no `labels` when failed.
      assert.deepEqual(s3.labels, result.labels);
      const { labels: s3Labels, ...s3Rest } = s3;
      const { labels: printedLabelsOf, ...printedRest } = printed;
      assert.deepEqual(printedLabelsOf, result.status === 'ok' ? printedLabels(result.labels) : undefined);
      assert.deepEqual(s3Rest, printedRest);
      assert.deepEqual(
        Object.keys(s3).filter((k) => k !== 'labels' || result.status === 'ok'),
        Object.keys(printed),
        'same keys, same order',
      );
      assert.ok(Array.isArray(s3Labels));
    });
    assert.equal(Object.hasOwn(exportLine(RESULTS[1] as ImageResult), 'jobId'), false, 'no jobId: no key');
  });

  it('query CSV and export CSV write a cell with a comma, quote, line break, leading = and trailing space identically', async () => {
    const expected = `"'=HYPERLINK(""x""),\nb "`;
    const fromExport = await exported('csv', RESULTS);
    const fromQuery = queryCsv(RESULTS);
    for (const [name, text] of [
      ['export', fromExport],
      ['query', fromQuery],
    ] as const) {
      assert.ok(text.includes(`,${expected},`), `${name} writes the key as ${JSON.stringify(expected)}`);
      assert.ok(text.endsWith('\r\n'), `${name} ends its records with CRLF`);
      const [header, ...records] = parseCsv(text);
      assert.equal(records.length, RESULTS.length, `${name}: one record per result`);
      const keyAt = header?.indexOf('key') ?? -1;
      assert.deepEqual(
        records.map((r) => r[keyAt]),
        RESULTS.map((r) => (r.key === HOSTILE_KEY ? `'${HOSTILE_KEY}` : r.key)),
      );
    }
    // The same cells in both: the columns the two name alike hold the same bytes.
    const cells = (text: string) => {
      const [header, ...records] = parseCsv(text);
      return (header ?? []).map((h, i) => [h, records.map((r) => r[i])] as const);
    };
    const queryCells = new Map(cells(fromQuery));
    for (const [header, values] of cells(fromExport)) {
      if (queryCells.has(header) && header !== 'labels')
        assert.deepEqual(queryCells.get(header), values, header);
    }
  });

  it('the DynamoDB attributes hold every field and read back to the same result', () => {
    for (const result of RESULTS) {
      const attributes = resultAttributes(result);
      assert.deepEqual(resultFromAttributes(attributes), result);
      assert.equal(attributes.modelId, result.model.id);
      assert.equal(attributes.errorCode, result.error?.code);
    }
  });

  it('the Athena columns are the S3 line keys in lower case, less the model partition', () => {
    const keys = new Set<string>();
    for (const r of RESULTS) for (const k of Object.keys(exportLine(r))) keys.add(k.toLowerCase());
    keys.delete('model');
    assert.deepEqual(RESULT_ATHENA_COLUMNS.map((c) => c.name).sort(), [...keys].sort());
    assert.equal(RESULTS_LINES_TABLE.columns, RESULT_ATHENA_COLUMNS);
    assert.ok(RESULTS_LINES_TABLE.partitionKeys.some((p) => p.name === 'model'));
  });

  it('`labeler label` prints a file row as a stored result prints its outcome', () => {
    const ok = RESULTS[0] as ImageResult;
    const row = jsonRow('photos/a.png', {
      status: 'ok',
      labels: ok.labels,
      width: 28,
      height: 28,
      format: 'png',
      timings: ok.timings,
    });
    assert.deepEqual(row, { file: 'photos/a.png', status: 'ok', labels: printedResult(ok).labels });
    const failed = RESULTS[2] as ImageResult;
    const error = failed.error ?? { code: '', message: '' };
    assert.deepEqual(
      jsonRow('b.png', { status: 'failed', error, retryable: false, timings: failed.timings }),
      {
        file: 'b.png',
        status: 'failed',
        error,
      },
    );
  });
});
