// `labeler jobs start --sample` (issue 24, item 2) and `query`/`export --model` (item 4)
// against a real local stack: a sample job labels exactly n objects of the prefix, the same
// n on a rerun; a second model's results, written through the stack's own results store,
// are read back by naming that model.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { RESOURCE_NAMES } from '../../shared/settings.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { LabelerProcess, waitForEndpoints } from '../helpers/labeler-process.ts';

const SAMPLES = join(DEFAULT_MODEL_DIR, 'samples');
const PREFIX = 'datasets/sampled/';
const OBJECTS = 300;
const SECOND = { id: 'second-model', version: '2' };

describe('labeler jobs start --sample, and query/export --model, on a real local stack', () => {
  let dataDir: string;
  let up: LabelerProcess;
  let clients: AwsClients;
  const keys: string[] = [];
  let firstKeys: string[] = [];
  const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir]);

  /** The keys a job labeled, from `query job`. */
  const labeledBy = async (jobId: string) => {
    const run = await cli('query', 'job', jobId);
    assert.equal(run.code, 0, run.stderr);
    return jsonLines(run.stdout)
      .map((l) => String(l.key))
      .sort();
  };
  const startSample = async (...extra: string[]) => {
    const run = await cli(
      'jobs',
      'start',
      '--prefix',
      PREFIX,
      '--mode',
      'all',
      '--target',
      'lambda',
      '--wait',
      '--format',
      'json',
      ...extra,
    );
    assert.equal(run.code, 0, run.stderr);
    const last = jsonLines(run.stdout).at(-1) as Record<string, unknown>;
    assert.equal(last.status, 'succeeded');
    return last;
  };

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-sample-'));
    up = new LabelerProcess(['local', 'up', '--data-dir', dataDir]);
    const endpoints = await waitForEndpoints(dataDir, up);
    clients = createAwsClients({ region: endpoints.region, endpoints: endpoints.endpoints, local: true });
    const files = (await readdir(SAMPLES)).filter((f) => f.endsWith('.png')).sort();
    const bodies = await Promise.all(files.map((f) => readFile(join(SAMPLES, f))));
    for (let i = 0; i < OBJECTS; i++) keys.push(`${PREFIX}${String(i).padStart(4, '0')}.png`);
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(
        keys.slice(i, i + 50).map((key, j) =>
          clients.s3.send(
            new PutObjectCommand({
              Bucket: RESOURCE_NAMES.imagesBucket,
              Key: key,
              Body: bodies[(i + j) % bodies.length],
            }),
          ),
        ),
      );
    }
  });

  after(async () => {
    clients?.s3.destroy();
    clients?.sqs.destroy();
    clients?.dynamo.destroy();
    up?.kill('SIGINT');
    await up?.exited;
    await rm(dataDir, { recursive: true, force: true });
  });

  it('--dry-run counts the sample, not the prefix, and starts nothing', async () => {
    const run = await cli(
      'jobs',
      'start',
      '--prefix',
      PREFIX,
      '--mode',
      'all',
      '--sample',
      '50',
      '--dry-run',
      '--format',
      'json',
    );
    assert.equal(run.code, 0, run.stderr);
    const [estimate] = jsonLines(run.stdout);
    assert.equal(estimate?.objects, OBJECTS);
    assert.equal(estimate?.images, 50);
    assert.deepEqual(estimate?.sample, { size: '50', seed: 0 });
    const list = await cli('jobs', 'list', '--format', 'json');
    assert.deepEqual(jsonLines(list.stdout), [], 'nothing started');
  });

  it('a job with --sample 50 labels exactly 50 objects of the prefix, and a rerun (--mode all) the same 50', async () => {
    const first = await startSample('--sample', '50');
    assert.deepEqual([first.total, first.labeled, first.failed], [50, 50, 0]);
    assert.deepEqual(first.sample, { size: '50', seed: 0 }, 'the job record carries the sample');
    firstKeys = await labeledBy(String(first.jobId));
    assert.equal(firstKeys.length, 50);
    assert.ok(firstKeys.every((k) => keys.includes(k)));
    // Spread over the listing: some from each third of the keys, not the first 50.
    const thirds = [0, 1, 2].map(
      (t) => firstKeys.filter((k) => keys.indexOf(k) >= t * 100 && keys.indexOf(k) < (t + 1) * 100).length,
    );
    assert.ok(
      thirds.every((n) => n > 0),
      `the sample reaches every part of the listing: ${thirds}`,
    );

    const status = await cli('jobs', 'status', String(first.jobId));
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^sample {4}50 objects, seed 0$/m);

    const again = await startSample('--sample', '50');
    assert.notEqual(again.jobId, first.jobId);
    assert.equal(again.labeled, 50);
    assert.deepEqual(await labeledBy(String(again.jobId)), firstKeys, 'the same 50 objects');

    const other = await startSample('--sample', '50', '--seed', '9');
    assert.equal(other.labeled, 50);
    assert.notDeepEqual(await labeledBy(String(other.jobId)), firstKeys, 'another seed, another sample');
  });

  it('a malformed --sample is a usage error (exit 2) naming both forms', async () => {
    const run = await cli('jobs', 'start', '--prefix', PREFIX, '--sample', '0%');
    assert.equal(run.code, 2);
    assert.match(run.stderr, /job\/invalid-sample.*50.*5%/);
  });

  it('query and export --model read a second model’s results; without it, the bundled model’s', async () => {
    assert.ok(firstKeys.length === 50, 'runs after the sample job labeled its 50');
    const store = new DynamoResultsStore(clients.db, RESOURCE_NAMES.resultsTable);
    const chosen = firstKeys.slice(0, 3);
    for (const key of chosen) {
      const [a] = await store.getByImage(RESOURCE_NAMES.imagesBucket, key);
      assert.ok(a, `${key} has the bundled model's result`);
      const { jobId: _job, ...rest } = a;
      const outcome = await store.put({
        ...rest,
        model: SECOND,
        labels: [{ label: 'Bag', score: 0.97 }],
        labeledAt: new Date().toISOString(),
      });
      assert.equal(outcome, 'written');
    }

    const image = await cli('query', 'image', chosen[0] as string);
    assert.equal(image.code, 0, image.stderr);
    assert.equal(jsonLines(image.stdout).length, 2, 'every model’s result without --model');
    const imageB = await cli('query', 'image', chosen[0] as string, '--model', 'second-model@2');
    assert.equal(imageB.code, 0, imageB.stderr);
    assert.deepEqual(
      jsonLines(imageB.stdout).map((l) => [l.model, l.modelVersion]),
      [['second-model', '2']],
    );

    const label = await cli('query', 'label', 'Bag', '--model', 'second-model@2', '--min-score', '0.9');
    assert.equal(label.code, 0, label.stderr);
    assert.deepEqual(
      jsonLines(label.stdout)
        .map((l) => String(l.key))
        .sort(),
      [...chosen].sort(),
      'only B’s results: the bundled model’s Bag hits are not among them',
    );

    const exportB = await cli(
      'export',
      '--prefix',
      PREFIX,
      '--model',
      'second-model@2',
      '--format',
      'jsonl',
      '--out',
      '-',
    );
    assert.equal(exportB.code, 0, exportB.stderr);
    const rowsB = jsonLines(exportB.stdout);
    assert.deepEqual(rowsB.map((r) => String(r.key)).sort(), [...chosen].sort());
    assert.ok(rowsB.every((r) => r.model === 'second-model' && r.modelVersion === '2'));

    const exportA = await cli('export', '--prefix', PREFIX, '--format', 'jsonl', '--out', '-');
    assert.equal(exportA.code, 0, exportA.stderr);
    const rowsA = jsonLines(exportA.stdout);
    assert.ok(rowsA.length >= 50, 'the sample jobs’ results under the bundled model');
    assert.ok(rowsA.every((r) => r.model === 'fashion-efficientnet'));

    const jobModel = await cli('query', 'job', 'j-abc', '--model', 'second-model@2');
    assert.equal(jobModel.code, 2, 'a job reads its own model');
  });
});
