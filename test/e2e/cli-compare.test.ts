import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import type { Comparison } from '../../shared/labeling/compare.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { RESOURCE_NAMES } from '../../shared/settings.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { LabelerProcess, waitForEndpoints } from '../helpers/labeler-process.ts';
import { waitFor } from '../helpers/wait.ts';

const SAMPLES = join(DEFAULT_MODEL_DIR, 'samples');
const SAMPLES_CSV = join(DEFAULT_MODEL_DIR, 'samples.csv');

type Row = { file: string; status: string; labels?: Array<{ label: string; score: number }> };

/** file → top-1 label of a `labeler label --format jsonl` output, read independently of compare. */
const topOf = (text: string) =>
  new Map(
    (jsonLines(text) as Row[]).filter((r) => r.status === 'ok').map((r) => [r.file, r.labels?.[0]?.label]),
  );

/** An INT8 variant of the bundled model, as a user makes it; fast on 20 calibration images. */
async function quantized(dir: string): Promise<string> {
  const out = join(dir, 'int8');
  const run = await runCli(['model', 'quantize', '--calibration', SAMPLES, '--images', '20', '--out', out]);
  assert.equal(run.code, 0, run.stderr);
  return out;
}

describe('labeler compare: the bundled model and its INT8 variant over the bundled samples', () => {
  let dir: string;
  let int8: string;
  let fileA: string;
  let fileB: string;
  let textA: string;
  let textB: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-compare-'));
    int8 = await quantized(dir);
    const a = await runCli(['label', SAMPLES, '--format', 'jsonl']);
    const b = await runCli(['label', '--model', int8, SAMPLES, '--format', 'jsonl']);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    [textA, textB] = [a.stdout, b.stdout];
    fileA = join(dir, 'a.jsonl');
    fileB = join(dir, 'b.jsonl');
    await writeFile(fileA, textA);
    await writeFile(fileB, textB);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const compare = (...extra: string[]) =>
    runCli([
      'compare',
      '--model',
      DEFAULT_MODEL_DIR,
      '--model',
      int8,
      '--results',
      fileA,
      '--results',
      fileB,
      ...extra,
    ]);

  it('reports the top-1 agreement computed by hand from both result sets, and a matrix that adds up', async () => {
    const run = await compare('--format', 'json');
    assert.equal(run.code, 0, run.stderr);
    const c = JSON.parse(run.stdout) as Comparison;
    const a = topOf(textA);
    const b = topOf(textB);
    const both = [...a.keys()].filter((f) => b.has(f));
    const agree = both.filter((f) => a.get(f) === b.get(f)).length;
    assert.equal(both.length, 200);
    assert.equal(c.images.compared, both.length);
    assert.equal(c.agreement.agree, agree);
    assert.equal(c.agreement.rate, agree / both.length);
    assert.deepEqual(c.models, { a: 'fashion-efficientnet@1.0.0', b: 'fashion-efficientnet-int8@1.0.0' });
    const matrix = c.transitions.matrix;
    assert.equal(
      matrix.flat().reduce((s, n) => s + n, 0),
      both.length,
    );
    assert.equal(
      matrix.reduce((s, row, i) => s + (row[i] ?? 0), 0),
      agree,
    );
    assert.equal(c.transitions.labels[0], 'T-shirt/top', "rows follow the model's labels file");
    const flips = both.filter((f) => a.get(f) !== b.get(f)).sort();
    assert.deepEqual(
      c.changed
        .filter((ch) => ch.a.label !== ch.b.label)
        .map((ch) => ch.image.key)
        .sort(),
      flips.filter((f) => c.changed.some((ch) => ch.image.key === f)),
    );
    assert.equal(c.scoreChanges.top1.images, both.length);
  });

  it('with --truth, gives both accuracies and who is right where, as counted by hand from samples.csv', async () => {
    const run = await compare('--truth', SAMPLES_CSV, '--format', 'json');
    assert.equal(run.code, 0, run.stderr);
    const c = JSON.parse(run.stdout) as Comparison;
    const truth = new Map(
      (await readFile(SAMPLES_CSV, 'utf8'))
        .trim()
        .split('\n')
        .slice(1)
        .map((line) => line.split(',') as [string, string]),
    );
    const a = topOf(textA);
    const b = topOf(textB);
    const name = (f: string) => f.split('/').at(-1) as string;
    const files = [...a.keys()];
    const right = (m: Map<string, string | undefined>, f: string) => m.get(f) === truth.get(name(f));
    assert.equal(c.truth?.images, 200);
    assert.equal(c.truth?.a.correct, files.filter((f) => right(a, f)).length);
    assert.equal(c.truth?.b.correct, files.filter((f) => right(b, f)).length);
    assert.equal(c.truth?.a.correct, 186, 'the bundled samples score 93.0 % today');
    assert.deepEqual(
      c.truth?.fixed.map((x) => x.image.key).sort(),
      files.filter((f) => right(b, f) && !right(a, f)).sort(),
    );
    assert.deepEqual(
      c.truth?.broken.map((x) => x.image.key).sort(),
      files.filter((f) => right(a, f) && !right(b, f)).sort(),
    );
    assert.equal(
      c.truth?.classes.reduce((s, k) => s + k.support, 0),
      200,
    );
  });

  it('prints the table and Markdown with every section', async () => {
    const table = await compare('--truth', SAMPLES_CSV, '--top', '3');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^top-1 agreement: \d+\.\d % \(\d+\/200\)/m);
    for (const section of [
      'Transitions',
      'Score changes',
      'Changed most (the 3 largest',
      'Newly under 0.5',
      'Accuracy per class',
    ])
      assert.ok(table.stdout.includes(section), section);
    const md = await compare('--format', 'markdown');
    assert.equal(md.code, 0, md.stderr);
    assert.match(md.stdout, /^\| A \\ B \| T-shirt\/top \| Trouser \|/m);
    assert.match(md.stdout, /^### Score changes/m);
  });

  it('refuses, one coded line each: a missing file, one --model, an unknown model, no overlap, a mismatched file', async () => {
    const missing = await runCli([
      'compare',
      '--model',
      DEFAULT_MODEL_DIR,
      '--model',
      int8,
      '--results',
      fileA,
      '--results',
      join(dir, 'missing.jsonl'),
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^labeler compare: \[results\/unreadable\] .*missing\.jsonl cannot be read/);
    assert.equal(missing.stderr.trim().split('\n').length, 1);

    const one = await runCli([
      'compare',
      '--model',
      DEFAULT_MODEL_DIR,
      '--results',
      fileA,
      '--results',
      fileB,
    ]);
    assert.equal(one.code, 2);
    assert.match(one.stderr, /give --model twice/);

    const oneFile = await runCli(['compare', '--model', 'a@1', '--model', 'b@1', '--results', fileA]);
    assert.equal(oneFile.code, 2);
    assert.match(oneFile.stderr, /give --results twice/);

    const unknown = await runCli([
      'compare',
      '--model',
      'no-such-model-here',
      '--model',
      int8,
      '--results',
      fileA,
      '--results',
      fileB,
    ]);
    assert.equal(unknown.code, 3);
    assert.match(unknown.stderr, /^labeler compare: \[model\/not-found\] /);

    const elsewhere = join(dir, 'elsewhere.jsonl');
    await writeFile(elsewhere, textB.replaceAll('/samples/', '/other/'));
    const none = await runCli([
      'compare',
      '--model',
      'a@1',
      '--model',
      'b@1',
      '--results',
      fileA,
      '--results',
      elsewhere,
    ]);
    assert.equal(none.code, 1);
    assert.match(
      none.stderr,
      /^labeler compare: \[compare\/no-overlap\] no image in both .* a@1 \(200 results\)/,
    );

    const exported = join(dir, 'exported.jsonl');
    await writeFile(
      exported,
      `${JSON.stringify({ bucket: 'b', key: 'k.png', model: 'other', modelVersion: '9', status: 'ok', labels: [] })}\n`,
    );
    const mismatch = await runCli([
      'compare',
      '--model',
      'a@1',
      '--model',
      'b@1',
      '--results',
      fileA,
      '--results',
      exported,
    ]);
    assert.equal(mismatch.code, 1);
    assert.match(mismatch.stderr, /\[compare\/model-mismatch\] .*line 1 is a result of other@9, not of b@1/);

    const help = await runCli(['compare', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Exit status: 0 when compared/);
    const top = await runCli(['--help']);
    assert.match(top.stdout, /^ {2}compare --model <A> --model <B>/m);
  });
});

/**
 * Two models' results of the same images in one stack: a job under the default model, then
 * the stack restarted with the INT8 variant (same results table) labels the same objects.
 */
describe('labeler compare against a real local stack holding two models’ results', () => {
  let dir: string;
  let dataDir: string;
  let int8: string;
  let up: LabelerProcess | undefined;
  let clients: AwsClients | undefined;
  let jobB = '';
  const PREFIX = 'images/cmp/'; // under the upload filter: uploads are labeled
  const files: string[] = [];
  const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir]);

  /** Starts the stack with a model, uploads the images and waits until the upload path labeled each under it. */
  const start = async (modelId: string, ...args: string[]) => {
    up = new LabelerProcess(['local', 'up', '--data-dir', dataDir, ...args]);
    const endpoints = await waitForEndpoints(dataDir, up);
    clients = createAwsClients({ region: endpoints.region, endpoints: endpoints.endpoints, local: true });
    for (const file of files)
      await clients.s3.send(
        new PutObjectCommand({
          Bucket: RESOURCE_NAMES.imagesBucket,
          Key: `${PREFIX}${file}`,
          Body: await readFile(join(SAMPLES, file)),
        }),
      );
    const store = new DynamoResultsStore(clients.db, RESOURCE_NAMES.resultsTable);
    for (const file of files)
      await waitFor(
        `${file} labeled by ${modelId}`,
        async () =>
          (await store.getByImage(RESOURCE_NAMES.imagesBucket, `${PREFIX}${file}`)).some(
            (r) => r.model.id === modelId,
          )
            ? true
            : undefined,
        120_000,
      );
  };
  const stop = async () => {
    clients?.s3.destroy();
    clients?.sqs.destroy();
    clients?.dynamo.destroy();
    up?.kill('SIGINT');
    await up?.exited;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-compare-stack-'));
    dataDir = join(dir, 'data');
    int8 = await quantized(dir);
    const csv = (await readFile(SAMPLES_CSV, 'utf8')).trim().split('\n').slice(1, 25);
    files.push(...csv.map((row) => row.split(',')[0] as string));

    await start('fashion-efficientnet');
    await stop();
    // The same results table, now labeling uploads with the INT8 variant; the same bytes
    // (same eTags) go back in. Then a job relabels them all under it, for --job.
    await start('fashion-efficientnet-int8', '--model', int8);
    // --model: the job records the model whose results it writes (the stack's, here).
    const b = await cli(
      'jobs',
      'start',
      '--prefix',
      PREFIX,
      '--mode',
      'all',
      '--model',
      int8,
      '--wait',
      '--format',
      'json',
    );
    assert.equal(b.code, 0, b.stderr);
    jobB = String(jsonLines(b.stdout)[0]?.jobId);
  });
  after(async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('--prefix and --job compare each model’s stored results, with the agreement counted by hand from the table', async () => {
    const store = new DynamoResultsStore((clients as AwsClients).db, RESOURCE_NAMES.resultsTable);
    let agree = 0;
    for (const file of files) {
      const results = await store.getByImage(RESOURCE_NAMES.imagesBucket, `${PREFIX}${file}`);
      const top = (id: string) => results.find((r) => r.model.id === id)?.labels[0]?.label;
      assert.ok(
        top('fashion-efficientnet') && top('fashion-efficientnet-int8'),
        `both models labeled ${file}`,
      );
      if (top('fashion-efficientnet') === top('fashion-efficientnet-int8')) agree++;
    }
    const byPrefix = await cli(
      'compare',
      '--model',
      'fashion-efficientnet@1.0.0',
      '--model',
      int8,
      '--prefix',
      PREFIX,
      '--format',
      'json',
    );
    assert.equal(byPrefix.code, 0, byPrefix.stderr);
    const p = JSON.parse(byPrefix.stdout) as Comparison;
    assert.equal(p.images.compared, files.length);
    assert.equal(p.agreement.agree, agree);
    assert.equal(p.images.a, files.length);
    assert.equal(p.images.b, files.length);

    const byJob = await cli(
      'compare',
      '--model',
      DEFAULT_MODEL_DIR,
      '--model',
      int8,
      '--job',
      jobB,
      '--format',
      'json',
    );
    assert.equal(byJob.code, 0, byJob.stderr);
    const j = JSON.parse(byJob.stdout) as Comparison;
    assert.equal(j.images.compared, files.length, 'the job relabeled every image under B');
    assert.equal(j.agreement.agree, agree);

    const nobody = await cli('compare', '--model', 'nobody@1', '--model', int8, '--prefix', PREFIX);
    assert.equal(nobody.code, 1);
    assert.match(
      nobody.stderr,
      /\[compare\/no-overlap\] no image under s3:\/\/.*\/images\/cmp\/ has an ok result from both nobody@1 \(0 results\)/,
    );
  });
});
