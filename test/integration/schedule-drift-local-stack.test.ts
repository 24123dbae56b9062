import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { writeEndpoints } from '../../local/endpoints.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import type { DriftReport } from '../../shared/labeling/drift.ts';
import type { Job } from '../../shared/labeling/jobs.ts';
import { PACKAGE_ROOT } from '../../shared/paths.ts';
import { DRIFT, RESOURCE_NAMES } from '../../shared/settings.ts';
import { runCli } from '../helpers/cli.ts';
import { waitFor } from '../helpers/wait.ts';

const SAMPLES = join(PACKAGE_ROOT, 'models', 'fashion-efficientnet', 'samples');
const SCHEDULE = 'inbox-nightly';

/**
 * Issue 24, item 5 on the local stack with a test clock: a schedule over `inbox/` in mode
 * `stale` labels each day's new images. Day 2 brings the same ten images as day 1 under new
 * keys (divergence 0, under the threshold); day 3 brings ten copies of one image (one class:
 * over it). The finishing process writes the LabelDrift metric as an EMF line; in-process,
 * the local stack writes it on stderr (its stdout is the CLI's JSON Lines), captured here.
 */
describe('label drift of a schedule on the local stack (test clock)', () => {
  let stack: LocalStack;
  let dataDir: string;
  let now = Date.parse('2026-11-28T10:00:00Z');
  const clock = () => new Date(now);
  const emf: Array<Record<string, unknown>> = [];
  const realWrite = process.stderr.write.bind(process.stderr);
  const runs: Job[] = [];

  before(async () => {
    // The real stream the local stack writes its metrics to, copied as it goes by.
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      for (const line of String(chunk).split('\n')) {
        if (line.startsWith('{"_aws"')) emf.push(JSON.parse(line) as Record<string, unknown>);
      }
      return (realWrite as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
    stack = await startLocalStack({ isolation: 'in-process', now: clock, schedulePollMs: 0 });
    // The CLI (a child process) finds this stack as it finds `local up`'s: through endpoints.json.
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-drift-'));
    await writeEndpoints(dataDir, {
      region: stack.region,
      endpoints: stack.endpoints,
      names: stack.names,
      readableBuckets: stack.readableBuckets.filter((b) => b !== stack.names.imagesBucket),
      pid: process.pid,
    });
  });
  after(async () => {
    process.stderr.write = realWrite;
    await stack?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const put = async (key: string, sample: string) =>
    stack.clients.s3.send(
      new PutObjectCommand({
        Bucket: RESOURCE_NAMES.imagesBucket,
        Key: key,
        Body: await readFile(join(SAMPLES, sample)),
      }),
    );
  const sample = (i: number) => `test-${String(i).padStart(5, '0')}.png`;

  /** Moves the clock a minute, fires the schedule once and waits for its job to finish. */
  async function nextRun(): Promise<Job> {
    now += 60_000;
    const [firing] = await stack.schedules.tick();
    assert.ok(firing, 'the schedule fired');
    const job = await waitFor(
      `run ${runs.length + 1} to finish`,
      async () => {
        const j = await stack.jobs.get(firing.jobId);
        return j && j.status !== 'planning' && j.status !== 'running' ? j : undefined;
      },
      180_000,
    );
    assert.equal(job.status, 'succeeded');
    runs.push(job);
    return job;
  }

  const driftLines = () =>
    emf.filter((e) => e.Schedule === SCHEDULE && typeof e[DRIFT.metricName] === 'number');

  it('keeps each run’s top-1 histogram; the same mix is under the threshold, one class over it, and the metric says so', async () => {
    await stack.schedules.add({
      name: SCHEDULE,
      expression: 'rate(1 minute)',
      bucket: RESOURCE_NAMES.imagesBucket,
      prefix: 'inbox/',
      target: 'lambda',
      mode: 'stale',
    });
    for (let i = 0; i < 10; i++) await put(`inbox/day1/${i}.png`, sample(i));
    const first = await nextRun();
    assert.equal(first.labelSummary?.images, 10);
    const labels = Object.keys(first.labelSummary?.top1 ?? {});
    assert.ok(labels.length >= 3, `a mix of classes on day 1: ${labels.join(', ')}`);
    assert.ok((first.labelSummary?.meanTop1Score ?? 0) > 0 && (first.labelSummary?.meanTop1Score ?? 0) <= 1);

    for (let i = 0; i < 10; i++) await put(`inbox/day2/${i}.png`, sample(i));
    const second = await nextRun();
    assert.equal(second.skipped, 10, 'day 1 is not labeled again');
    assert.deepEqual(second.labelSummary?.top1, first.labelSummary?.top1, 'the same images, the same labels');

    for (let i = 0; i < 10; i++) await put(`inbox/day3/${i}.png`, sample(0));
    const third = await nextRun();
    assert.deepEqual(Object.values(third.labelSummary?.top1 ?? {}), [10], 'one class');

    const sent = await waitFor(
      'three LabelDrift lines',
      async () => (driftLines().length >= 3 ? driftLines() : undefined),
      30_000,
    );
    const values = sent.map((e) => e[DRIFT.metricName] as number);
    assert.equal(values.length, 3, 'one per finished run');
    assert.equal(values[0], 0, 'the first finished run is the baseline');
    assert.equal(values[1], 0);
    assert.ok((values[2] as number) > DRIFT.threshold, `one class: ${values[2]}`);
    const metricSpec = (sent[2]?._aws as { CloudWatchMetrics: unknown[] } | undefined)?.CloudWatchMetrics;
    assert.deepEqual(metricSpec, [
      { Namespace: 'Labeler', Dimensions: [['Schedule']], Metrics: [{ Name: 'LabelDrift', Unit: 'None' }] },
    ]);

    // `jobs status` shows the summary the job keeps, in JSON and in text.
    const status = await runCli(['jobs', 'status', third.jobId, '--format', 'json', '--data-dir', dataDir]);
    assert.equal(status.code, 0, status.stderr);
    assert.deepEqual(JSON.parse(status.stdout).labelSummary, third.labelSummary);
    const text = await runCli(['jobs', 'status', third.jobId, '--data-dir', dataDir]);
    const [only] = Object.keys(third.labelSummary?.top1 ?? {});
    assert.match(text.stdout, new RegExp(`^top-1 +${only} 10 \\(100\\.0%\\)$`, 'm'));
    assert.match(text.stdout, /^scores +mean top-1 0\.\d{3}, \d+\.\d% under 0\.5 \(10 images labeled ok\)$/m);

    // The CLI reads the same runs through the stack: the same divergences.
    const json = await runCli([
      'jobs',
      'schedule',
      'drift',
      SCHEDULE,
      '--format',
      'json',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout) as DriftReport;
    assert.equal(report.baselineJobId, first.jobId);
    assert.deepEqual(
      report.runs.map((r) => [r.jobId, r.overThreshold]),
      [
        [first.jobId, false],
        [second.jobId, false],
        [third.jobId, true],
      ],
    );
    assert.equal(report.runs[1]?.divergence, 0);
    assert.equal(report.runs[2]?.divergence, values[2], 'the metric sent is the divergence the CLI shows');

    const table = await runCli([
      'jobs',
      'schedule',
      'drift',
      SCHEDULE,
      '--limit',
      '1',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`${third.jobId}\\t.*OVER`));
    assert.doesNotMatch(table.stdout, new RegExp(second.jobId), '--limit 1: the newest run only');

    const rebased = await runCli([
      'jobs',
      'schedule',
      'drift',
      SCHEDULE,
      '--baseline',
      third.jobId,
      '--format',
      'json',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(rebased.code, 0, rebased.stderr);
    const againstThird = JSON.parse(rebased.stdout) as DriftReport;
    assert.deepEqual(
      againstThird.runs.map((r) => r.overThreshold),
      [true, true, false],
    );
  });

  it('names a missing schedule, and a baseline that is not one of its runs, with their codes', async () => {
    const none = await runCli(['jobs', 'schedule', 'drift', 'no-such', '--data-dir', dataDir]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /schedule\/not-found/);
    const other = await runCli([
      'jobs',
      'schedule',
      'drift',
      SCHEDULE,
      '--baseline',
      'j-000000000000000000000000',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /schedule\/baseline-not-a-run/);
  });
});

/**
 * The same drift when every job's finishing recount is paged (decision 0027): the histogram
 * travels in the recount steps' messages, and the planner, which makes the finishing
 * transition at the chain's end, is the process that writes the metric.
 */
describe('label drift when the recount runs in steps on the plan queue (local stack, test clock)', () => {
  let stack: LocalStack;
  let now = Date.parse('2026-11-28T10:00:00Z');
  const emf: Array<Record<string, unknown>> = [];
  const realWrite = process.stderr.write.bind(process.stderr);

  before(async () => {
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      for (const line of String(chunk).split('\n')) {
        if (line.startsWith('{"_aws"')) emf.push(JSON.parse(line) as Record<string, unknown>);
      }
      return (realWrite as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
    stack = await startLocalStack({
      isolation: 'in-process',
      now: () => new Date(now),
      schedulePollMs: 0,
      recount: { inlineRecountMax: 0, recountPageLimit: 2 },
      planOptions: { recountPagesPerStep: 1 },
    });
  });
  after(async () => {
    process.stderr.write = realWrite;
    await stack?.stop();
  });

  it('keeps the same histogram and sends the divergence from the planner', async () => {
    await stack.schedules.add({
      name: 'paged',
      expression: 'rate(1 minute)',
      bucket: RESOURCE_NAMES.imagesBucket,
      prefix: 'paged/',
      target: 'lambda',
      mode: 'stale',
    });
    const run = async (day: number, file: (i: number) => string): Promise<Job> => {
      for (let i = 0; i < 6; i++) {
        await stack.clients.s3.send(
          new PutObjectCommand({
            Bucket: RESOURCE_NAMES.imagesBucket,
            Key: `paged/day${day}/${i}.png`,
            Body: await readFile(join(SAMPLES, file(i))),
          }),
        );
      }
      now += 60_000;
      const [firing] = await stack.schedules.tick();
      assert.ok(firing);
      const job = await waitFor(
        `paged run ${day}`,
        async () => {
          const j = await stack.jobs.get(firing.jobId);
          return j && j.status !== 'planning' && j.status !== 'running' ? j : undefined;
        },
        180_000,
      );
      assert.equal(job.status, 'succeeded');
      return job;
    };
    const mixed = await run(1, (i) => `test-${String(i).padStart(5, '0')}.png`);
    assert.equal(mixed.labelSummary?.images, 6);
    const one = await run(2, () => 'test-00000.png');
    assert.equal(one.labelSummary?.images, 6);
    assert.equal(Object.keys(one.labelSummary?.top1 ?? {}).length, 1);
    const lines = await waitFor(
      'two LabelDrift lines',
      async () => {
        const found = emf.filter((e) => e.Schedule === 'paged');
        return found.length >= 2 ? found : undefined;
      },
      30_000,
    );
    assert.equal(lines.length, 2);
    assert.equal(lines[0]?.[DRIFT.metricName], 0);
    assert.ok((lines[1]?.[DRIFT.metricName] as number) > DRIFT.threshold);
  });
});
