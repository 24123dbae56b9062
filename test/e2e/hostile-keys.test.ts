import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../../shared/paths.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { LabelerProcess, waitForEndpoints } from '../helpers/labeler-process.ts';

const SAMPLES = join(PACKAGE_ROOT, 'models', 'fashion-efficientnet', 'samples');

/** File names that become hostile keys under `images/hostile/`. */
const NAMES = [
  'cr\rx.png',
  'lf\nx.png',
  'tab\tx.png',
  'pct%41%zz.png',
  'plus+ sp.png',
  'ünï猫🐱.png',
  `<b>&amp;"'.png`,
];
/** Prefixes whose keys have dot or empty segments; each gets `real.png`. */
const DOT_PREFIXES = ['images/dots/../', 'images/./', 'images//', 'images/..x/'];
/** 1,024 bytes: S3's longest key, over a by-label sort key once the score and bucket precede it. */
const LONG_PREFIX = `images/${'Q'.repeat(1024 - 'images/'.length - '/long.png'.length)}/`;
/** Not labeled on arrival (outside images/): a job labels it. */
const OUTSIDE = '../labels/';

type Row = Record<string, unknown> & { key?: string; status?: string; labels?: Array<{ label: string }> };

describe('a hostile-key corpus goes through upload, a job, query, export and the page API, one result per key', () => {
  let dataDir: string;
  let files: string;
  let up: LabelerProcess;
  let ui: LabelerProcess | undefined;
  const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir]);
  /** key -> the labels the upload --wait (or the job) printed for it. */
  const expected = new Map<string, string>();

  async function folderOf(name: string, fileNames: readonly string[]): Promise<string> {
    const dir = join(files, name);
    await mkdir(dir, { recursive: true });
    const samples = (await readdir(SAMPLES)).filter((f) => f.endsWith('.png')).sort();
    for (const [i, file] of fileNames.entries()) {
      await copyFile(join(SAMPLES, samples[(i * 7) % samples.length] as string), join(dir, file));
    }
    return dir;
  }

  async function uploadAndWait(dir: string, prefix: string): Promise<Row[]> {
    const run = await cli('upload', dir, '--prefix', prefix, '--wait', '--timeout', '120');
    assert.equal(run.code, 0, `upload --prefix ${JSON.stringify(prefix)}: ${run.stderr}`);
    return jsonLines(run.stdout) as Row[];
  }

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-hostile-'));
    files = await mkdtemp(join(tmpdir(), 'labeler-hostile-files-'));
    up = new LabelerProcess(['local', 'up', '--data-dir', dataDir]);
    await waitForEndpoints(dataDir, up);
  });

  after(async () => {
    ui?.kill('SIGINT');
    await ui?.exited;
    up?.kill('SIGINT');
    await up?.exited;
    await rm(dataDir, { recursive: true, force: true });
    await rm(files, { recursive: true, force: true });
  });

  it('upload --wait: each key gets its own result; a key over 1,024 bytes is refused with upload/key-too-long', async () => {
    const hostile = await uploadAndWait(await folderOf('hostile', NAMES), 'images/hostile/');
    const real = await folderOf('real', ['real.png']);
    const dotted: Row[] = [];
    for (const prefix of DOT_PREFIXES) dotted.push(...(await uploadAndWait(real, prefix)));
    const long = await uploadAndWait(await folderOf('long', ['long.png']), LONG_PREFIX);
    const rows = [...hostile, ...dotted, ...long];
    const keys = [
      ...NAMES.map((n) => `images/hostile/${n}`),
      ...DOT_PREFIXES.map((p) => `${p}real.png`),
      `${LONG_PREFIX}long.png`,
    ];
    assert.equal(Buffer.byteLength(`${LONG_PREFIX}long.png`), 1024);
    assert.deepEqual(rows.map((r) => [r.key, r.status]).sort(), keys.map((k) => [k, 'ok']).sort());
    for (const row of rows) expected.set(String(row.key), JSON.stringify(row.labels));

    const tooLong = await cli('upload', join(files, 'long'), '--prefix', `${LONG_PREFIX}Q/`);
    const [refused] = jsonLines(tooLong.stdout) as Array<{ status: string; error: { code: string } }>;
    assert.equal(refused?.status, 'skipped', tooLong.stdout);
    assert.equal(refused?.error.code, 'upload/key-too-long');

    // Not labeled on arrival: stored now, labeled by the jobs below.
    const datasets = await cli('upload', join(files, 'hostile'), '--prefix', 'datasets/hostile/');
    assert.equal(datasets.code, 0, datasets.stderr);
    const outside = await cli('upload', await folderOf('outside', ['Sneaker']), '--prefix', OUTSIDE);
    assert.equal(outside.code, 0, outside.stderr);
  });

  it('a job over each prefix labels every key once: no object/not-found, nothing left running', async () => {
    const job = async (prefix: string) => {
      const run = await cli(
        'jobs',
        'start',
        '--prefix',
        prefix,
        '--mode',
        'all',
        '--wait',
        '--format',
        'json',
      );
      assert.equal(run.code, 0, `${prefix}: ${run.stderr}`);
      const last = jsonLines(run.stdout).at(-1) as Record<string, number | string>;
      const query = await cli('query', 'job', String(last.jobId));
      return { last, rows: jsonLines(query.stdout) as Row[] };
    };
    // Already labeled with the same content; mode all labels each key again (a CR key too).
    const images = await job('images/');
    assert.deepEqual(
      [images.last.status, images.last.total, images.last.failed, images.last.labeled],
      ['succeeded', expected.size, 0, expected.size],
      JSON.stringify(images.last),
    );
    for (const [prefix, from] of [
      ['datasets/', 'images/'],
      [OUTSIDE, undefined],
    ] as const) {
      const { last, rows } = await job(prefix);
      assert.equal(last.status, 'succeeded', JSON.stringify(last));
      assert.equal(last.failed, 0, JSON.stringify(last));
      const keys = prefix === OUTSIDE ? [`${OUTSIDE}Sneaker`] : NAMES.map((n) => `${prefix}hostile/${n}`);
      assert.deepEqual(rows.map((r) => [r.key, r.status]).sort(), keys.map((k) => [k, 'ok']).sort());
      for (const row of rows) {
        const key = String(row.key);
        if (from) assert.equal(JSON.stringify(row.labels), expected.get(key.replace(prefix, from)), key);
      }
      for (const row of rows) expected.set(String(row.key), JSON.stringify(row.labels));
    }
  });

  it('query image: each key reads back its own single result', async () => {
    for (const [key, labels] of expected) {
      const run = await cli('query', 'image', key, '--format', 'jsonl');
      assert.equal(run.code, 0, `${JSON.stringify(key)}: ${run.stderr}`);
      const rows = jsonLines(run.stdout) as Row[];
      assert.deepEqual(
        rows.map((r) => [r.key, r.status, JSON.stringify(r.labels)]),
        [[key, 'ok', labels]],
        JSON.stringify(key),
      );
    }
  });

  it('export --prefix: every key once, with its result', async () => {
    const rows: Row[] = [];
    for (const prefix of ['images/', 'datasets/', OUTSIDE]) {
      const run = await cli('export', '--prefix', prefix, '--format', 'jsonl', '--out', '-');
      assert.equal(run.code, 0, run.stderr);
      rows.push(...(jsonLines(run.stdout) as Row[]));
    }
    assert.deepEqual(rows.map((r) => String(r.key)).sort(), [...expected.keys()].sort());
    for (const row of rows) assert.equal(JSON.stringify(row.labels), expected.get(String(row.key)));
  });

  it("the page's API: /api/image and /api/images give each key its own result", async () => {
    ui = new LabelerProcess(['ui', '--data-dir', dataDir]);
    const [, url] = (await ui.waitForOutput(/Results page: (http:\/\/127\.0\.0\.1:\d+)\S*/)) as string[];
    const api = async (path: string, query: Record<string, string>) => {
      const response = await fetch(`${url}/api/${path}?${new URLSearchParams(query)}`);
      assert.equal(
        response.status,
        200,
        `${path} ${JSON.stringify(query)}: ${await response.clone().text()}`,
      );
      return (await response.json()) as Record<string, unknown>;
    };
    for (const [key, labels] of expected) {
      const image = (await api('image', { key })) as { key: string; result?: Row };
      assert.equal(image.key, key);
      assert.equal(image.result?.key, key, JSON.stringify(key));
      assert.equal(JSON.stringify(image.result?.labels), labels, JSON.stringify(key));
    }
    const listed: Array<{ key: string; result?: Row }> = [];
    for (const prefix of ['images/', 'datasets/', OUTSIDE]) {
      let cursor: string | undefined;
      do {
        // One page: fauxqs sorts a listing by localeCompare but resumes it by code units, so a
        // page boundary can skip an upper-case key there (S3 uses UTF-8 byte order for both).
        const page = (await api('images', { prefix, limit: '100', ...(cursor ? { cursor } : {}) })) as {
          items: Array<{ key: string; result?: Row }>;
          cursor?: string;
        };
        listed.push(...page.items);
        cursor = page.cursor;
      } while (cursor);
    }
    assert.deepEqual(listed.map((i) => i.key).sort(), [...expected.keys()].sort());
    for (const item of listed) {
      assert.equal(JSON.stringify(item.result?.labels), expected.get(item.key), JSON.stringify(item.key));
    }
  });
});
