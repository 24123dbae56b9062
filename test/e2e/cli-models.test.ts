// Several models in one stack (issue 24, items 1 and 4), as a user drives them: `local up`
// with the bundled model and a second one, a sample job with the second, a rerun, uploads
// meanwhile under the default, `--mode stale` finishing the prefix, and the default switched
// on the same data folder without losing the first model's results.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import type { ImageResult } from '../../shared/labeling/results.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { RESOURCE_NAMES } from '../../shared/settings.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { s3EventBody } from '../helpers/events.ts';
import { LabelerProcess, readEndpointsFile, waitForEndpoints } from '../helpers/labeler-process.ts';
import { waitFor } from '../helpers/wait.ts';

const SAMPLES = join(DEFAULT_MODEL_DIR, 'samples');
const PREFIX = 'datasets/models/'; // outside the upload filter: only jobs label it
const OBJECTS = 120;
const BUNDLED = { id: 'fashion-efficientnet', version: '1.0.0' };
/** The second model: a copy of the bundled one under another id and version, as a retrained model would be. */
const CANDIDATE = { id: 'candidate-model', version: '2.0.0' };

describe('a local stack hosting two models: jobs start --model, uploads under the default', () => {
  let dir: string;
  let dataDir: string;
  let candidateDir: string;
  let up: LabelerProcess | undefined;
  let clients: AwsClients | undefined;
  let bodies: Buffer[] = [];
  const keys: string[] = [];
  let sampled: string[] = [];
  const uploadsUnderBundled: string[] = [];
  const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir]);
  const store = () => new DynamoResultsStore((clients as AwsClients).db, RESOURCE_NAMES.resultsTable);

  const startStack = async (...extra: string[]) => {
    up = new LabelerProcess([
      'local',
      'up',
      '--data-dir',
      dataDir,
      '--model',
      'fashion',
      '--model',
      candidateDir,
      ...extra,
    ]);
    const endpoints = await waitForEndpoints(dataDir, up);
    clients = createAwsClients({ region: endpoints.region, endpoints: endpoints.endpoints, local: true });
  };
  const stopStack = async () => {
    clients?.s3.destroy();
    clients?.sqs.destroy();
    clients?.dynamo.destroy();
    clients = undefined;
    up?.kill('SIGINT');
    await up?.exited;
    up = undefined;
  };
  const put = (key: string, n: number) =>
    (clients as AwsClients).s3.send(
      new PutObjectCommand({
        Bucket: RESOURCE_NAMES.imagesBucket,
        Key: key,
        Body: bodies[n % bodies.length],
      }),
    );
  const putPrefix = async () => {
    for (let i = 0; i < keys.length; i += 40)
      await Promise.all(keys.slice(i, i + 40).map((key, j) => put(key, i + j)));
  };
  /** Uploads under the upload filter and waits for each one's first result. */
  const uploadAndWait = async (prefix: string, count: number): Promise<Map<string, ImageResult[]>> => {
    const uploaded = Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(3, '0')}.png`);
    await Promise.all(uploaded.map((key, i) => put(key, i)));
    const results = new Map<string, ImageResult[]>();
    for (const key of uploaded) {
      results.set(
        key,
        await waitFor(
          `a result for the upload ${key}`,
          async () => {
            const found = await store().getByImage(RESOURCE_NAMES.imagesBucket, key);
            return found.length > 0 ? found : undefined;
          },
          120_000,
        ),
      );
    }
    return results;
  };
  const startJob = async (...extra: string[]) => {
    const run = await cli(
      'jobs',
      'start',
      '--prefix',
      PREFIX,
      '--target',
      'lambda',
      '--wait',
      '--format',
      'json',
      ...extra,
    );
    assert.equal(run.code, 0, run.stderr);
    const last = jsonLines(run.stdout).at(-1) as Record<string, unknown>;
    assert.equal(last.status, 'succeeded', JSON.stringify(last));
    return last;
  };
  const jobResults = async (jobId: string) => {
    const run = await cli('query', 'job', jobId);
    assert.equal(run.code, 0, run.stderr);
    return jsonLines(run.stdout);
  };
  const exported = async (...extra: string[]) => {
    const run = await cli('export', '--prefix', PREFIX, '--format', 'jsonl', '--out', '-', ...extra);
    assert.equal(run.code, 0, run.stderr);
    return jsonLines(run.stdout);
  };
  const sortedKeys = (rows: Array<Record<string, unknown>>) => rows.map((r) => String(r.key)).sort();
  /** The model a results page shows (its /api/config), the page started by `local up` or `labeler ui`. */
  const pageModel = async (owner: LabelerProcess) => {
    const [, url] = (await owner.waitForOutput(/Results page: (http:\/\/127\.0\.0\.1:\d+\/)/)) as string[];
    const config = (await (await fetch(`${url}api/config`)).json()) as { model: { id: string } };
    return config.model.id;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-models-'));
    dataDir = join(dir, 'data');
    candidateDir = join(dir, 'candidate');
    await cp(DEFAULT_MODEL_DIR, candidateDir, { recursive: true });
    const manifestPath = join(candidateDir, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    await writeFile(manifestPath, JSON.stringify({ ...manifest, ...CANDIDATE }));
    const files = (await readdir(SAMPLES)).filter((f) => f.endsWith('.png')).sort();
    bodies = await Promise.all(files.map((f) => readFile(join(SAMPLES, f))));
    for (let i = 0; i < OBJECTS; i++) keys.push(`${PREFIX}${String(i).padStart(4, '0')}.png`);
    await startStack();
    await putPrefix();
  });

  after(async () => {
    await stopStack();
    await rm(dir, { recursive: true, force: true });
  });

  it('local up hosts both, the first the default, and says so in endpoints.json', async () => {
    assert.match(
      up?.stdout ?? '',
      /models +fashion-efficientnet \(fashion-efficientnet@1\.0\.0, default\), candidate \(candidate-model@2\.0\.0\): uploads get fashion-efficientnet/,
    );
    const endpoints = (await readEndpointsFile(dataDir)) as unknown as {
      models: { default: string; models: Array<{ name: string; id: string }> };
    };
    assert.equal(endpoints.models.default, 'fashion-efficientnet');
    assert.equal(await pageModel(up as LabelerProcess), BUNDLED.id, 'the page shows the default model');
    assert.deepEqual(
      endpoints.models.models.map((m) => [m.name, m.id]),
      [
        ['fashion-efficientnet', BUNDLED.id],
        ['candidate', CANDIDATE.id],
      ],
    );
  });

  it('a --model candidate --sample 50 job labels exactly 50 objects with the candidate, the same 50 on a rerun, while uploads get the default', async () => {
    // Uploads made while the job runs: labeled by the default model, never by the job's.
    const [job, uploads] = await Promise.all([
      startJob('--model', 'candidate', '--sample', '50', '--mode', 'all'),
      uploadAndWait('images/meanwhile/', 8),
    ]);
    assert.deepEqual([job.total, job.labeled, job.failed], [50, 50, 0]);
    assert.equal(job.model, `${CANDIDATE.id}@${CANDIDATE.version}`);
    assert.equal(job.modelName, 'candidate');
    const rows = await jobResults(String(job.jobId));
    sampled = sortedKeys(rows);
    assert.equal(sampled.length, 50);
    assert.ok(sampled.every((k) => keys.includes(k)));
    assert.ok(
      rows.every((r) => r.model === CANDIDATE.id && r.modelVersion === CANDIDATE.version),
      'every result of the job carries the candidate’s id@version',
    );
    // Only the candidate labeled the prefix: export by its name finds the 50, the default none.
    assert.deepEqual(sortedKeys(await exported('--model', 'candidate')), sampled);
    assert.deepEqual(await exported(), [], 'the default model labeled nothing under the prefix');

    for (const [key, results] of uploads) {
      assert.deepEqual(
        results.map((r) => `${r.model.id}@${r.model.version}`),
        [`${BUNDLED.id}@${BUNDLED.version}`],
        `${key}: the default model's result only`,
      );
      uploadsUnderBundled.push(key);
    }
    // Given time, still no candidate result for an upload: each has one result, the default's.
    const anyUpload = uploadsUnderBundled[0] as string;
    const image = await cli('query', 'image', anyUpload);
    assert.equal(image.code, 0, image.stderr);
    assert.deepEqual(
      jsonLines(image.stdout).map((r) => r.model),
      [BUNDLED.id],
    );

    const again = await startJob('--model', 'candidate', '--sample', '50', '--mode', 'all');
    assert.notEqual(again.jobId, job.jobId);
    assert.equal(again.labeled, 50);
    assert.deepEqual(sortedKeys(await jobResults(String(again.jobId))), sampled, 'the same 50 objects');
  });

  it('--mode stale labels only what the job’s model has not labeled yet, whatever the other model labeled', async () => {
    assert.equal(sampled.length, 50, 'runs after the sample job');
    // The default model labels another sample of the prefix: the candidate has not labeled most of it.
    const byDefault = await startJob('--model', 'fashion', '--sample', '30', '--seed', '5', '--mode', 'all');
    assert.equal(byDefault.labeled, 30);
    assert.equal(byDefault.modelName, 'fashion-efficientnet');
    const defaultKeys = sortedKeys(await jobResults(String(byDefault.jobId)));
    assert.ok(
      defaultKeys.some((k) => !sampled.includes(k)),
      'some objects the default labeled, the candidate did not',
    );

    const estimate = await cli(
      'jobs',
      'start',
      '--prefix',
      PREFIX,
      '--model',
      'candidate',
      '--mode',
      'stale',
      '--dry-run',
      '--format',
      'json',
    );
    assert.equal(estimate.code, 0, estimate.stderr);
    const [counted] = jsonLines(estimate.stdout);
    assert.equal(counted?.objects, OBJECTS);
    assert.equal(counted?.images, OBJECTS - 50, 'the estimate counts what the candidate has not labeled');

    const job = await startJob('--model', 'candidate', '--mode', 'stale');
    assert.equal(job.total, OBJECTS);
    assert.equal(job.skipped, 50, 'the 50 the candidate labeled are skipped');
    assert.equal(job.labeled, OBJECTS - 50);
    assert.equal(job.failed, 0);
    const rest = keys.filter((k) => !sampled.includes(k)).sort();
    assert.deepEqual(
      sortedKeys(await jobResults(String(job.jobId))),
      rest,
      'the job wrote the results of exactly the objects the candidate had not labeled',
    );
    const all = sortedKeys(await exported('--model', `${CANDIDATE.id}@${CANDIDATE.version}`));
    assert.deepEqual(all, [...keys].sort(), 'the candidate now has every object of the prefix');
    assert.deepEqual(
      sortedKeys(await exported('--model', 'fashion')),
      defaultKeys,
      'the default’s results are its own 30, untouched',
    );

    const back = await startJob('--model', 'fashion', '--mode', 'stale');
    assert.deepEqual([back.skipped, back.labeled], [30, OBJECTS - 30], 'and the same the other way');

    // compare names both by their names in the stack; the candidate is the same network.
    const compared = await cli(
      'compare',
      '--model',
      'fashion-efficientnet',
      '--model',
      'candidate',
      '--prefix',
      PREFIX,
      '--format',
      'json',
    );
    assert.equal(compared.code, 0, compared.stderr);
    const c = JSON.parse(compared.stdout) as {
      models: { a: string; b: string };
      images: { compared: number };
      agreement: { agree: number };
    };
    assert.deepEqual(c.models, { a: 'fashion-efficientnet@1.0.0', b: 'candidate-model@2.0.0' });
    assert.deepEqual([c.images.compared, c.agreement.agree], [OBJECTS, OBJECTS]);
  });

  it('an unknown --model is a usage error naming the hosted models; so is a --default-model the stack does not host', async () => {
    const nope = await cli('jobs', 'start', '--prefix', PREFIX, '--model', 'nope');
    assert.equal(nope.code, 2, nope.stderr);
    assert.equal(nope.stderr.trim().split('\n').length, 1, nope.stderr);
    assert.match(
      nope.stderr,
      /\[job\/unknown-model\] .*fashion-efficientnet \(fashion-efficientnet@1\.0\.0, default\), candidate \(candidate-model@2\.0\.0\)/,
    );
    const list = await cli('jobs', 'list', '--format', 'json');
    assert.equal(jsonLines(list.stdout).length, 5, 'nothing started: the five jobs above only');

    const other = join(dir, 'other-data');
    const badDefault = await runCli([
      'local',
      'up',
      '--data-dir',
      other,
      '--model',
      'fashion',
      '--model',
      candidateDir,
      '--default-model',
      'nope',
    ]);
    assert.equal(badDefault.code, 2, badDefault.stderr);
    assert.match(
      badDefault.stderr,
      /--default-model nope is none of the models: fashion-efficientnet, candidate/,
    );
  });

  it('status shows every model’s jobs and bulk queues by name; dlq lists and redrives one model’s jobs DLQ', async () => {
    const status = await cli('status', '--format', 'json');
    assert.equal(status.code, 0, status.stderr);
    const queues = (JSON.parse(status.stdout) as { queues: Record<string, { ok: boolean }> }).queues;
    assert.deepEqual(Object.keys(queues), [
      'incoming',
      'incomingDlq',
      ...['fashion-efficientnet', 'candidate'].flatMap((m) => [
        `jobs:${m}`,
        `jobsDlq:${m}`,
        `bulk:${m}`,
        `bulkDlq:${m}`,
      ]),
      'plan',
      'planDlq',
    ]);
    assert.ok(Object.values(queues).every((q) => q.ok));
    const text = await cli('status');
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^jobs:candidate DLQ +0 +0 +0$/m);
    assert.match(text.stdout, /^bulk:fashion-efficientnet +0 /m);

    // A message the candidate's jobs queue gave up on: its DLQ, found by the model's name.
    const key = 'parked/candidate-dlq.png';
    const body = bodies[0] as Buffer;
    const c = clients as AwsClients;
    const put = await c.s3.send(
      new PutObjectCommand({ Bucket: RESOURCE_NAMES.imagesBucket, Key: key, Body: body }),
    );
    const endpoints = (await readEndpointsFile(dataDir)) as unknown as {
      models: { models: Array<{ name: string; jobsDlqUrl: string }> };
    };
    const dlqUrl = endpoints.models.models.find((m) => m.name === 'candidate')?.jobsDlqUrl as string;
    await c.sqs.send(
      new SendMessageCommand({
        QueueUrl: dlqUrl,
        MessageBody: s3EventBody({
          bucket: RESOURCE_NAMES.imagesBucket,
          key,
          eTag: put.ETag ?? '',
          size: body.length,
        }),
      }),
    );
    const bare = await cli('dlq', 'list', '--queue', 'jobs');
    assert.equal(bare.code, 2, bare.stderr);
    assert.match(bare.stderr, /--queue jobs:<model>, one of fashion-efficientnet .*candidate/);
    const empty = await cli('dlq', 'list', '--queue', 'jobs:fashion-efficientnet');
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(empty.stderr, /0 messages in the jobs:fashion-efficientnet dead-letter queue/);

    const listed = await cli('dlq', 'list', '--queue', 'jobs:candidate');
    assert.equal(listed.code, 0, listed.stderr);
    const letters = jsonLines(listed.stdout) as Array<{
      queue: string;
      objects: Array<{ key: string }>;
      error: { code: string; message: string };
    }>;
    assert.deepEqual(
      letters.map((l) => [l.queue, l.objects[0]?.key, l.error.code]),
      [['jobs:candidate', key, 'dlq/retries-exhausted']],
    );
    assert.match(letters[0]?.error.message ?? '', /1 of 1 objects have no result/);

    const redrive = await cli('dlq', 'redrive', '--queue', `jobs:${CANDIDATE.id}@${CANDIDATE.version}`);
    assert.equal(redrive.code, 0, redrive.stderr);
    assert.deepEqual(jsonLines(redrive.stdout), [{ queue: 'jobs:candidate', how: 'moved-here', moved: 1 }]);
    const result = await waitFor(
      `${key} labeled after the redrive`,
      async () => {
        const found = await store().getByImage(RESOURCE_NAMES.imagesBucket, key);
        return found.length > 0 ? found : undefined;
      },
      120_000,
    );
    assert.deepEqual(
      result.map((r) => r.model.id),
      [CANDIDATE.id],
      'back on the candidate’s queue, labeled by the candidate',
    );
  });

  it('switching the default on the same data folder keeps the first model’s results; new uploads get the second', async () => {
    assert.ok(uploadsUnderBundled.length > 0, 'runs after the uploads above');
    const firstUpload = uploadsUnderBundled[0] as string;
    const [bundledResult] = await store().getByImage(RESOURCE_NAMES.imagesBucket, firstUpload);
    const topLabel = bundledResult?.labels[0]?.label as string;
    await stopStack();
    await startStack('--default-model', 'candidate');
    assert.match(up?.stdout ?? '', /uploads get candidate/);
    // S3 lives in memory: the prefix is put back for what reads it (export by prefix).
    await putPrefix();

    const byBundled = await cli('query', 'label', topLabel, '--model', 'fashion', '--limit', '1000');
    assert.equal(byBundled.code, 0, byBundled.stderr);
    const hits = jsonLines(byBundled.stdout);
    assert.ok(
      hits.some((h) => h.key === firstUpload),
      `query --model fashion still finds ${firstUpload} under ${topLabel}`,
    );
    // Without --model: the stack's default, now the candidate, which never labeled the uploads.
    const byDefault = await cli('query', 'label', topLabel, '--limit', '1000');
    assert.equal(byDefault.code, 0, byDefault.stderr);
    assert.ok(!jsonLines(byDefault.stdout).some((h) => h.key === firstUpload));
    const exportedNow = await exported();
    assert.equal(exportedNow.length, OBJECTS);
    assert.ok(
      exportedNow.every((r) => r.model === CANDIDATE.id),
      'export without --model reads the new default’s (the candidate’s) results',
    );

    assert.equal(await pageModel(up as LabelerProcess), CANDIDATE.id, 'the page shows the new default');
    for (const [extra, shown] of [
      [[], CANDIDATE.id],
      [['--model', 'fashion'], BUNDLED.id],
    ] as const) {
      const ui = new LabelerProcess(['ui', '--data-dir', dataDir, ...extra]);
      try {
        assert.equal(await pageModel(ui), shown, `labeler ui ${extra.join(' ')}`);
      } finally {
        ui.kill('SIGINT');
        await ui.exited;
      }
    }

    const after = await uploadAndWait('images/after-switch/', 3);
    for (const [key, results] of after) {
      assert.deepEqual(
        results.map((r) => `${r.model.id}@${r.model.version}`),
        [`${CANDIDATE.id}@${CANDIDATE.version}`],
        `${key}: labeled by the new default`,
      );
    }
  });
});
