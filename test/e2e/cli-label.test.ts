import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readExpectedLabels } from '../../shared/labeling/accuracy.ts';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../../shared/paths.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { solidImage } from '../helpers/images.ts';

const SAMPLES = join(DEFAULT_MODEL_DIR, 'samples');
const SAMPLES_CSV = join(DEFAULT_MODEL_DIR, 'samples.csv');

describe('labeler label', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('labels the 200 bundled samples with >= 89 % top-1 accuracy, one JSON line each', async () => {
    const run = await runCli(['label', SAMPLES, '--format', 'jsonl', '--expect', SAMPLES_CSV]);
    assert.equal(run.code, 0, run.stderr);
    const rows = jsonLines(run.stdout);
    const expected = await readExpectedLabels(SAMPLES_CSV);
    assert.equal(rows.length, expected.size);
    let correct = 0;
    for (const row of rows) {
      assert.equal(row.status, 'ok', JSON.stringify(row));
      const labels = row.labels as Array<{ label: string; score: number }>;
      assert.equal(labels.length, 5);
      assert.ok(
        labels.every((l, i) => i === 0 || (labels[i - 1]?.score ?? 0) >= l.score),
        'best first',
      );
      if (labels[0]?.label === expected.get(basename(row.file as string))) correct++;
    }
    const accuracy = correct / rows.length;
    assert.ok(accuracy >= 0.89, `top-1 accuracy ${accuracy}`);
    assert.match(run.stderr, /top-1 accuracy: \d+\.\d %/);
  });

  it('gives a folder mixing good and bad files exactly one line per file and exits 0', async () => {
    const folder = join(dir, 'mixed');
    await mkdir(join(folder, 'nested', 'deeper'), { recursive: true });
    await copyFile(join(SAMPLES, 'test-00000.png'), join(folder, 'good.png'));
    await writeFile(
      join(folder, 'nested', 'deeper', 'photo.jpg'),
      await solidImage(300, 200, '#c08040').jpeg().toBuffer(),
    );
    const png = await readFile(join(SAMPLES, 'test-00001.png'));
    await writeFile(join(folder, 'truncated.png'), png.subarray(0, 60));
    await writeFile(join(folder, 'empty.jpg'), '');
    await writeFile(join(folder, 'notes.txt'), 'not an image');
    await writeFile(join(folder, 'vector.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    await writeFile(join(folder, '.hidden.png'), png);

    const run = await runCli(['label', folder, '--format', 'jsonl', '--top-k', '2', '--batch-size', '3']);
    assert.equal(run.code, 0, run.stderr);
    const rows = jsonLines(run.stdout);
    const byName = new Map(rows.map((r) => [basename(r.file as string), r]));
    assert.equal(rows.length, 6);
    assert.deepEqual([...byName.keys()].sort(), [
      'empty.jpg',
      'good.png',
      'notes.txt',
      'photo.jpg',
      'truncated.png',
      'vector.svg',
    ]);
    assert.equal(byName.get('good.png')?.status, 'ok');
    assert.equal((byName.get('good.png')?.labels as unknown[] | undefined)?.length, 2);
    assert.equal(byName.get('photo.jpg')?.status, 'ok');
    const code = (name: string) => (byName.get(name)?.error as { code: string } | undefined)?.code;
    assert.equal(code('empty.jpg'), 'image/empty');
    assert.equal(code('truncated.png'), 'image/decode-failed');
    assert.equal(code('notes.txt'), 'image/unsupported-format');
    assert.equal(code('vector.svg'), 'image/unsupported-format');
  });

  it('exits 2 on a usage error with one line and where the help is, not the whole help', async () => {
    const run = await runCli(['label', SAMPLES, '--top-k', 'zero']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--top-k must be a positive integer/);
    assert.equal(
      run.stderr,
      'labeler label: --top-k must be a positive integer, got "zero"\nsee "labeler label --help"\n',
    );
  });

  it('exits 3 with the model error code when the model folder is unusable', async () => {
    const run = await runCli(['label', SAMPLES, '--model', join(dir, 'no-model')]);
    assert.equal(run.code, 3);
    assert.match(run.stderr, /\[model\/not-found\]/);
    assert.equal(run.stdout, '');
  });
});

describe('labeler with no command, or one it does not have', () => {
  it('prints the commands on --help (exit 0) and with no command (exit 2)', async () => {
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: labeler <command>/);
    const none = await runCli([]);
    assert.equal(none.code, 2);
    assert.match(none.stdout, /^Usage: labeler <command>/);
  });

  it('--version prints the version (exit 0)', async () => {
    const { version } = JSON.parse(await readFile(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-V']) {
      const run = await runCli([flag]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, `labeler ${version}\n`);
    }
  });

  for (const [args, why] of [
    [
      ['label', 'x.png', '--batch-size', '-1'],
      /^labeler label: --batch-size must be a positive integer, got "-1"\n/,
    ],
    [
      ['local', 'run', 'x', '--timeout', '-1'],
      /^labeler local: --timeout must be a positive integer, got "-1"\n/,
    ],
    [
      ['label', 'x.png', '--top-k', '-0.5'],
      /^labeler label: --top-k must be a positive integer, got "-0.5"\n/,
    ],
  ] as const) {
    it(`${args.join(' ')}: says what is wrong with the value, not "ambiguous"`, async () => {
      const run = await runCli([...args]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, why);
      assert.doesNotMatch(run.stderr, /ambiguous/);
    });
  }

  for (const name of ['frob', 'toString', 'constructor', '__proto__']) {
    it(`"labeler ${name}" is an unknown command, exit 2`, async () => {
      const run = await runCli([name]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, new RegExp(`unknown command "${name}"`));
      assert.doesNotMatch(run.stderr, /Usage:/);
      assert.match(run.stderr, /see "labeler --help"/);
      assert.equal(run.stdout, '');
    });
  }
});
