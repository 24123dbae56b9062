import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { PACKAGE_ROOT } from '../../shared/paths.ts';
import { RESOURCE_NAMES } from '../../shared/settings.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { LabelerProcess, waitForEndpoints } from '../helpers/labeler-process.ts';

const MODEL_DIR = join(PACKAGE_ROOT, 'models', 'fashion-efficientnet');
const SAMPLES = join(MODEL_DIR, 'samples');
const PREFIX = 'images/review/';
const IMAGES = 6;

interface Task {
  id?: number;
  data: { image: string; bucket: string; key: string };
  predictions: Array<{
    model_version: string;
    score: number;
    result: Array<{
      id: string;
      type: string;
      from_name: string;
      to_name: string;
      value: { choices: string[] };
    }>;
  }>;
}

describe('labeler review against a real local stack: export tasks, answer them, import the answers', () => {
  let dataDir: string;
  let outDir: string;
  let up: LabelerProcess;
  let clients: AwsClients;
  let classes: string[];
  /** What `upload --wait` printed, by key: the model's labels for each image. */
  const uploaded = new Map<string, Array<{ label: string; score: number }>>();
  const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir]);

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-review-'));
    outDir = await mkdtemp(join(tmpdir(), 'labeler-review-out-'));
    classes = (await readFile(join(MODEL_DIR, 'labels.txt'), 'utf8')).split('\n').filter(Boolean);
    up = new LabelerProcess(['local', 'up', '--data-dir', dataDir]);
    const endpoints = await waitForEndpoints(dataDir, up);
    clients = createAwsClients({ region: endpoints.region, endpoints: endpoints.endpoints, local: true });
    const samples = (await readdir(SAMPLES))
      .filter((f) => f.endsWith('.png'))
      .sort()
      .slice(0, IMAGES);
    const run = await cli('upload', ...samples.map((s) => join(SAMPLES, s)), '--prefix', PREFIX, '--wait');
    assert.equal(run.code, 0, run.stderr);
    for (const row of jsonLines(run.stdout)) {
      uploaded.set(String(row.key), row.labels as Array<{ label: string; score: number }>);
    }
    assert.equal(uploaded.size, IMAGES, run.stdout);
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

  const top = (key: string) => {
    const labels = [...(uploaded.get(key) ?? [])].sort((a, b) => b.score - a.score);
    return {
      first: labels[0] as { label: string; score: number },
      margin: (labels[0]?.score ?? 0) - (labels[1]?.score ?? 0),
    };
  };

  it('--format label-studio: every image a task, lowest score first, predictions matching the config written beside them, URLs that open', async () => {
    const out = join(outDir, 'tasks.json');
    const run = await cli('review', 'export', '--prefix', PREFIX, '--format', 'label-studio', '--out', out);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(
        `wrote ${IMAGES} tasks to .*tasks\\.json and the labeling config to .*tasks\\.config\\.xml, lowest score first`,
      ),
    );
    assert.match(run.stderr, /image URLs are presigned and expire in 604800 s, at \d{4}-\d\d-\d\dT/);

    const tasks = JSON.parse(await readFile(out, 'utf8')) as Task[];
    const keys = [...uploaded.keys()].sort(
      (a, b) => top(a).first.score - top(b).first.score || (a < b ? -1 : 1),
    );
    assert.deepEqual(
      tasks.map((t) => t.data.key),
      keys,
      'lowest top-1 score first',
    );
    const config = await readFile(join(outDir, 'tasks.config.xml'), 'utf8');
    assert.match(config, /<Image name="image" value="\$image"\/>/);
    assert.match(config, /<Choices name="label" toName="image" choice="single"/);
    for (const c of classes) assert.ok(config.includes(`<Choice value="${c}"/>`), c);
    for (const task of tasks) {
      assert.equal(task.data.bucket, RESOURCE_NAMES.imagesBucket);
      assert.deepEqual(Object.keys(task), ['data', 'predictions']);
      assert.equal(task.predictions.length, 1);
      const [prediction] = task.predictions;
      assert.match(String(prediction?.model_version), /^fashion-efficientnet@/);
      assert.equal(prediction?.score, top(task.data.key).first.score);
      assert.deepEqual(
        prediction?.result.map((r) => [r.type, r.from_name, r.to_name, r.value.choices]),
        [['choices', 'label', 'image', [top(task.data.key).first.label]]],
      );
      // The URL opens the image, as Label Studio's browser would.
      const response = await fetch(task.data.image);
      assert.equal(response.status, 200, task.data.image);
      const body = Buffer.from(await response.arrayBuffer());
      const file = task.data.key.slice(PREFIX.length);
      assert.ok(body.equals(await readFile(join(SAMPLES, file))), `${file}: the same bytes`);
    }
  });

  it('--order margin --max-score and --image-urls s3', async () => {
    const scores = [...uploaded.keys()].map((k) => top(k).first.score).sort((a, b) => a - b);
    // A threshold between the 3rd and 4th lowest scores keeps exactly three images.
    const max = ((scores[2] as number) + (scores[3] as number)) / 2;
    const out = join(outDir, 'margin.json');
    const run = await cli(
      'review',
      'export',
      '--prefix',
      PREFIX,
      '--format',
      'label-studio',
      '--out',
      out,
      '--order',
      'margin',
      '--max-score',
      String(max),
      '--image-urls',
      's3',
    );
    assert.equal(run.code, 0, run.stderr);
    const tasks = JSON.parse(await readFile(out, 'utf8')) as Task[];
    const kept = [...uploaded.keys()]
      .filter((k) => top(k).first.score < max)
      .sort((a, b) => top(a).margin - top(b).margin || (a < b ? -1 : 1));
    assert.deepEqual(
      tasks.map((t) => t.data.key),
      kept,
    );
    assert.equal(kept.length, 3);
    for (const t of tasks) assert.equal(t.data.image, `s3://${RESOURCE_NAMES.imagesBucket}/${t.data.key}`);
    assert.match(run.stderr, /3 at or above --max-score .* left out/);
  });

  it('--format fiftyone: labels.json with label and confidence, lowest score first', async () => {
    const out = join(outDir, 'labels.json');
    const run = await cli('review', 'export', '--prefix', PREFIX, '--format', 'fiftyone', '--out', out);
    assert.equal(run.code, 0, run.stderr);
    const json = JSON.parse(await readFile(out, 'utf8')) as { labels: Record<string, unknown> };
    const keys = [...uploaded.keys()].sort(
      (a, b) => top(a).first.score - top(b).first.score || (a < b ? -1 : 1),
    );
    assert.deepEqual(json, {
      labels: Object.fromEntries(
        keys.map((k) => [
          k.replace(/\.png$/, ''),
          { label: top(k).first.label, confidence: top(k).first.score },
        ]),
      ),
    });
    assert.deepEqual(
      Object.keys(json.labels),
      keys.map((k) => k.replace(/\.png$/, '')),
    );
  });

  it('review import: the answers of a Label Studio export become one truth/ object, line for line', async () => {
    const tasks = JSON.parse(await readFile(join(outDir, 'tasks.json'), 'utf8')) as Task[];
    const s3Tasks = JSON.parse(await readFile(join(outDir, 'margin.json'), 'utf8')) as Task[];
    const [t0, t1, t2, t3] = tasks as [Task, Task, Task, Task];
    const other = classes.find((c) => c !== t0.predictions[0]?.result[0]?.value.choices[0]) as string;
    const answer = (label: string, extra: Record<string, unknown> = {}) => ({
      result: [
        { id: 'a', type: 'choices', from_name: 'label', to_name: 'image', value: { choices: [label] } },
      ],
      was_cancelled: false,
      ground_truth: false,
      created_at: '2026-05-01T09:00:00.000000Z',
      updated_at: '2026-05-01T09:30:00.250000Z',
      lead_time: 3.2,
      ...extra,
    });
    // What Label Studio exports as JSON after people answered the imported tasks.
    const exported = [
      {
        id: 1,
        ...t0,
        annotations: [{ id: 1, completed_by: { id: 2, email: 'ana@example.com' }, ...answer(other) }],
      },
      // Accepted the prediction as it was.
      {
        id: 2,
        ...t1,
        annotations: [
          { id: 2, completed_by: 5, ...answer(String(t1.predictions[0]?.result[0]?.value.choices[0])) },
        ],
      },
      {
        id: 3,
        ...t2,
        annotations: [{ id: 3, completed_by: 5, ...answer('', { result: [], was_cancelled: true }) }],
      },
      { id: 4, ...t3, annotations: [{ id: 4, completed_by: 5, ...answer('Not clothing') }] },
      // A task of the s3:// export, its image named only by data.image.
      {
        id: 5,
        data: { image: s3Tasks[0]?.data.image },
        annotations: [{ id: 5, completed_by: 5, ...answer(classes[0] as string) }],
      },
    ];
    const file = join(outDir, 'project-1-at-2026-05-01.json');
    await writeFile(file, JSON.stringify(exported));
    const run = await cli('review', 'import', file);
    assert.equal(run.code, 0, run.stderr);
    const url = run.stdout.trim();
    const match = /^s3:\/\/([^/]+)\/(truth\/\d{4}-\d\d-\d\d\/[0-9a-f]{16}\.jsonl)$/.exec(url);
    assert.ok(match, url);
    assert.equal(match[1], RESOURCE_NAMES.resultsBucket);
    assert.equal(match[2]?.slice(6, 16), new Date().toISOString().slice(0, 10));
    assert.match(
      run.stderr,
      /imported 3 answers from 5 tasks; 1 skipped annotation ignored; 1 task without an answer; 1 answer with a label not among the model's classes not written: "Not clothing" \(1\)/,
    );

    const object = await clients.s3.send(new GetObjectCommand({ Bucket: match[1], Key: match[2] }));
    const text = await object.Body?.transformToString();
    const images = RESOURCE_NAMES.imagesBucket;
    assert.equal(
      text,
      [
        {
          bucket: images,
          key: t0.data.key,
          label: other,
          annotator: 'ana@example.com',
          annotatedAt: '2026-05-01T09:30:00.250Z',
          source: 'label-studio',
        },
        {
          bucket: images,
          key: t1.data.key,
          label: t1.predictions[0]?.result[0]?.value.choices[0],
          annotator: '5',
          annotatedAt: '2026-05-01T09:30:00.250Z',
          source: 'label-studio',
        },
        {
          bucket: images,
          key: s3Tasks[0]?.data.key,
          label: classes[0],
          annotator: '5',
          annotatedAt: '2026-05-01T09:30:00.250Z',
          source: 'label-studio',
        },
      ]
        .map((l) => `${JSON.stringify(l)}\n`)
        .join(''),
    );

    // The same export again: the same object, not a second copy.
    const again = await cli('review', 'import', file);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.trim(), url);
  });

  it('refuses what is not a Label Studio JSON export, with one line and status 2', async () => {
    const file = join(outDir, 'min.json');
    await writeFile(file, JSON.stringify({ image: 'x', label: 'Bag' }));
    const run = await cli('review', 'import', file);
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /^labeler review: \[review\/bad-export\] .*min\.json: a Label Studio JSON export is an array of tasks/,
    );
    assert.match(run.stderr, /see "labeler review --help"\n$/);
  });
});
