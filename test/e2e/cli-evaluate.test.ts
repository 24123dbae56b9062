import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import type { Evaluation } from '../../shared/labeling/evaluate.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { RESOURCE_NAMES } from '../../shared/settings.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { LabelerProcess, waitForEndpoints } from '../helpers/labeler-process.ts';

const SAMPLES = join(DEFAULT_MODEL_DIR, 'samples');
const SAMPLES_CSV = join(DEFAULT_MODEL_DIR, 'samples.csv');

const matrixSum = (e: Evaluation) => e.confusion.matrix.flat().reduce((a, b) => a + b, 0);

describe("labeler evaluate over the bundled samples' results", () => {
  let dir: string;
  let results: string;
  let expectAccuracy: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-evaluate-'));
    const run = await runCli(['label', SAMPLES, '--format', 'jsonl', '--expect', SAMPLES_CSV]);
    assert.equal(run.code, 0, run.stderr);
    results = join(dir, 'samples.jsonl');
    await writeFile(results, run.stdout);
    expectAccuracy = /top-1 accuracy: (\d+\.\d) %/.exec(run.stderr)?.[1] ?? '';
    assert.notEqual(expectAccuracy, '', run.stderr);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("prints top-1 accuracy equal to --expect's, and a JSON confusion matrix that sums to the images", async () => {
    const run = await runCli(['evaluate', '--results', results, '--truth', SAMPLES_CSV, '--format', 'json']);
    assert.equal(run.code, 0, run.stderr);
    const e = JSON.parse(run.stdout) as Evaluation;
    assert.equal(e.images, 200);
    assert.equal(((e.top1.accuracy ?? 0) * 100).toFixed(1), expectAccuracy);
    assert.equal(expectAccuracy, '93.0', 'the bundled samples score 93.0 % today');
    assert.equal(matrixSum(e), e.images);
    assert.equal(e.confusion.columns.at(-1), '(none)');
    assert.equal(
      e.classes.reduce((sum, c) => sum + c.support, 0),
      e.images,
    );
    assert.equal(
      e.calibration.bins.reduce((sum, b) => sum + b.images, 0),
      e.ok,
    );
    assert.equal(e.thresholds[0]?.images, 200);
    assert.ok((e.topK.accuracy ?? 0) >= (e.top1.accuracy ?? 1));
  });

  it('prints the table with every section, and --min-accuracy the lowest threshold reaching it', async () => {
    const run = await runCli([
      'evaluate',
      '--results',
      results,
      '--truth',
      SAMPLES_CSV,
      '--min-accuracy',
      '0.98',
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      new RegExp(`top-1 accuracy: ${expectAccuracy.replace('.', '\\.')} % \\(\\d+/200\\)`),
    );
    for (const section of ['Per class:', 'Confusion matrix', 'Calibration', 'Thresholds'])
      assert.ok(run.stdout.includes(section), section);
    const m = /--min-accuracy 98\.0 %: minimum score (\S+) keeps (\d+) of 200 images/.exec(run.stdout);
    assert.ok(m, run.stdout);
    const json = await runCli([
      'evaluate',
      '--results',
      results,
      '--truth',
      SAMPLES_CSV,
      '--min-accuracy',
      '0.98',
      '--format',
      'json',
    ]);
    const e = JSON.parse(json.stdout) as Evaluation;
    assert.ok((e.minAccuracy?.accuracy ?? 0) >= 0.98);
    assert.equal(String(e.minAccuracy?.images), m[2]);
  });

  it('prints Markdown tables', async () => {
    const run = await runCli([
      'evaluate',
      '--results',
      results,
      '--truth',
      SAMPLES_CSV,
      '--format',
      'markdown',
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^\| truth \\ top-1 \| T-shirt\/top \|/m);
    assert.match(run.stdout, /^### Thresholds/m);
  });

  it('reports truth labels the model lacks and counts failed rows as misses', async () => {
    const truth = join(dir, 'odd.csv');
    await writeFile(truth, 'test-00000.png,Ankle boot\ntest-00001.png,Hat\nbroken.png,Bag\n');
    const lines = join(dir, 'odd.jsonl');
    const ok = (await readFile(results, 'utf8')).split('\n').filter((l) => /test-0000[01]\.png/.test(l));
    await writeFile(
      lines,
      `${[...ok, JSON.stringify({ file: '/x/broken.png', status: 'failed', error: { code: 'image/decode-failed', message: 'bad' } })].join('\n')}\n`,
    );
    const run = await runCli(['evaluate', '--results', lines, '--truth', truth, '--format', 'json']);
    assert.equal(run.code, 0, run.stderr);
    const e = JSON.parse(run.stdout) as Evaluation;
    assert.equal(e.images, 3);
    assert.equal(e.failed, 1);
    assert.deepEqual(e.unknownLabels, [{ label: 'Hat', images: 1 }]);
    assert.equal(e.confusion.rows.at(-1), 'Hat');
    assert.equal(matrixSum(e), 3);
    const table = await runCli(['evaluate', '--results', lines, '--truth', truth]);
    assert.match(
      table.stdout,
      /truth\/unknown-label: 1 image has a truth label the model does not have.*"Hat" \(1\)/,
    );
  });

  it('exits 2 for a usage error and 1 for truth or results it cannot read, one line each', async () => {
    const usage = await runCli(['evaluate', '--truth', SAMPLES_CSV]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /choose exactly one of --job.*\nsee "labeler evaluate --help"\n$/);
    const format = await runCli([
      'evaluate',
      '--results',
      results,
      '--truth',
      SAMPLES_CSV,
      '--format',
      'xml',
    ]);
    assert.equal(format.code, 2);
    const noTruth = await runCli(['evaluate', '--results', results, '--truth', join(dir, 'missing.csv')]);
    assert.equal(noTruth.code, 1);
    assert.match(noTruth.stderr, /^labeler evaluate: \[truth\/unreadable\] .*missing\.csv cannot be read/);
    const noMatch = join(dir, 'other.csv');
    await writeFile(noMatch, 'file,label\nelsewhere.png,Bag\n');
    const none = await runCli(['evaluate', '--results', results, '--truth', noMatch]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /\[truth\/no-match\]/);
    const help = await runCli(['evaluate', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Exit status: 0 when evaluated/);
  });
});

describe('labeler evaluate against a real local stack: a job, a prefix, the stored review answers', () => {
  let dataDir: string;
  let truthDir: string;
  let up: LabelerProcess;
  let clients: AwsClients;
  let jobId = '';
  const PREFIX = 'eval/';
  /** ImageFolder keys: <class>/<file>, the class from samples.csv. */
  const keys: Array<{ key: string; label: string }> = [];
  const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir]);

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-evaluate-stack-'));
    truthDir = await mkdtemp(join(tmpdir(), 'labeler-evaluate-tree-'));
    up = new LabelerProcess(['local', 'up', '--data-dir', dataDir]);
    const endpoints = await waitForEndpoints(dataDir, up);
    clients = createAwsClients({ region: endpoints.region, endpoints: endpoints.endpoints, local: true });
    const csv = (await readFile(SAMPLES_CSV, 'utf8')).trim().split('\n').slice(1, 13);
    for (const row of csv) {
      const [file, label] = row.split(',') as [string, string];
      keys.push({ key: `${label}/${file}`, label });
      await mkdir(join(truthDir, label), { recursive: true });
      await writeFile(join(truthDir, label, file), '');
      await clients.s3.send(
        new PutObjectCommand({
          Bucket: RESOURCE_NAMES.imagesBucket,
          Key: `${PREFIX}${label}/${file}`,
          Body: await readFile(join(SAMPLES, file)),
        }),
      );
    }
    // Not an image: the job's failed one.
    keys.push({ key: 'Bag/broken.png', label: 'Bag' });
    await mkdir(join(truthDir, 'Bag'), { recursive: true });
    await writeFile(join(truthDir, 'Bag', 'broken.png'), '');
    await clients.s3.send(
      new PutObjectCommand({
        Bucket: RESOURCE_NAMES.imagesBucket,
        Key: `${PREFIX}Bag/broken.png`,
        Body: Buffer.from('not an image'),
      }),
    );
    const job = await cli('jobs', 'start', '--prefix', PREFIX, '--mode', 'all', '--wait', '--format', 'json');
    assert.equal(job.code, 0, job.stderr);
    jobId = String(jsonLines(job.stdout)[0]?.jobId);
  });

  after(async () => {
    clients?.s3.destroy();
    clients?.sqs.destroy();
    clients?.dynamo.destroy();
    up?.kill('SIGINT');
    await up?.exited;
    await rm(dataDir, { recursive: true, force: true });
    await rm(truthDir, { recursive: true, force: true });
  });

  it('--job with an ImageFolder truth: the failed image in the (none) column, the matrix summing to the images', async () => {
    const run = await cli('evaluate', '--job', jobId, '--truth', truthDir, '--format', 'json');
    assert.equal(run.code, 0, run.stderr);
    const e = JSON.parse(run.stdout) as Evaluation;
    assert.equal(e.images, keys.length);
    assert.equal(e.failed, 1);
    assert.equal(matrixSum(e), keys.length);
    const bag = e.confusion.rows.indexOf('Bag');
    assert.ok((e.confusion.matrix[bag]?.at(-1) ?? 0) >= 1, 'the broken Bag is in the (none) column');
  });

  it("--prefix with --truth stack: the stack's truth/ answers, the newest per image", async () => {
    const answer = (key: string, label: string, annotatedAt: string) =>
      JSON.stringify({
        bucket: RESOURCE_NAMES.imagesBucket,
        key: `${PREFIX}${key}`,
        label,
        annotator: 'tester',
        annotatedAt,
        source: 'label-studio',
      });
    const first = keys[0] as { key: string; label: string };
    const lines = [
      ...keys.map((k) => answer(k.key, k.label, '2026-01-02T00:00:00Z')),
      // An older answer for the first image: the newer one above wins.
      answer(first.key, first.label === 'Bag' ? 'Coat' : 'Bag', '2026-01-01T00:00:00Z'),
    ];
    await clients.s3.send(
      new PutObjectCommand({
        Bucket: RESOURCE_NAMES.resultsBucket,
        Key: 'truth/test.jsonl',
        Body: `${lines.join('\n')}\n`,
      }),
    );
    const byStack = JSON.parse(
      (await cli('evaluate', '--prefix', PREFIX, '--truth', 'stack', '--format', 'json')).stdout,
    ) as Evaluation;
    const byTree = JSON.parse(
      (await cli('evaluate', '--job', jobId, '--truth', truthDir, '--format', 'json')).stdout,
    ) as Evaluation;
    assert.equal(byStack.images, keys.length);
    assert.equal(byStack.truth.images, keys.length);
    assert.deepEqual(byStack.confusion.matrix, byTree.confusion.matrix);
    assert.equal(byStack.top1.correct, byTree.top1.correct);
  });
});
