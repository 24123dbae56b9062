import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Column, formatTable, RowWriter, truncate } from '../../cli/formats.ts';
import { csvLine } from '../../shared/csv.ts';

type Row = { key: string; score: number };
const columns: Column<Row>[] = [
  { header: 'key', value: (r) => r.key, keep: 'end', maxWidth: 12 },
  { header: 'score', value: (r) => r.score.toFixed(2), align: 'right' },
];

function written(format: 'jsonl' | 'table' | 'csv', rows: Row[]): string {
  let text = '';
  const out = new RowWriter<Row>({ format, columns, json: (r) => r, out: (t) => (text += t) });
  for (const row of rows) out.write(row);
  out.end();
  return text;
}

describe('row formats: csv quoting, aligned tables cut to width', () => {
  it('writes CSV with the one writer: quotes commas, quotes, line breaks and edge spaces, CRLF record ends', () => {
    assert.equal(
      csvLine(['plain', 'a,b', 'say "hi"', 'two\nlines', ' lead', '']),
      'plain,"a,b","say ""hi""","two\nlines"," lead",\r\n',
    );
    assert.equal(
      written('csv', [{ key: 'images/a,b.png', score: 0.5 }]),
      'key,score\r\n"images/a,b.png",0.50\r\n',
    );
    assert.equal(written('csv', []), 'key,score\r\n', 'a header even with no rows');
  });

  it('neutralises cells a spreadsheet would run as formulas (OWASP): a leading quote, then quoted', () => {
    assert.equal(
      csvLine(['=cmd|calc.png', '+1', '-2', '@SUM(A1)', '\tx', '\rx', 'a=b', '']),
      `"'=cmd|calc.png","'+1","'-2","'@SUM(A1)","'\tx","'\rx",a=b,\r\n`,
    );
    assert.equal(csvLine([-1, 0.5]), '-1,0.5\r\n', 'numbers are kept');
    assert.equal(
      written('csv', [{ key: '=HYPERLINK("http://x")', score: 0.5 }]),
      `key,score\r\n"'=HYPERLINK(""http://x"")",0.50\r\n`,
    );
  });

  it('aligns table columns, right-aligns numbers, keeps the end of a long key, and one line per row', () => {
    const table = written('table', [
      { key: 'images/deep/folder/cat.png', score: 0.5 },
      { key: 'a\nb', score: 10 },
    ]);
    assert.equal(table, ['key           score', '…der/cat.png   0.50', 'a?b           10.00', ''].join('\n'));
    const [header, ...lines] = table.trimEnd().split('\n');
    assert.ok(lines.every((l) => l.length === header?.length));
  });

  it('cuts by code points, never inside a surrogate pair', () => {
    assert.equal(truncate('🐱🐱🐱🐱', 3, 'start'), '🐱🐱…');
    assert.equal(truncate('🐱🐱🐱🐱', 3, 'end'), '…🐱🐱');
    assert.equal(truncate('short', 10, 'end'), 'short');
  });

  it('streams JSON Lines in the given shape', () => {
    assert.equal(written('jsonl', [{ key: 'k', score: 1 }]), '{"key":"k","score":1}\n');
    assert.equal(formatTable(columns, []), 'key  score\n');
  });
});
