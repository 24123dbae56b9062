/// <reference lib="dom" />
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueUrlCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { jobIdFor } from '../../shared/aws/dynamo-jobs-store.ts';
import type { DriftReport } from '../../shared/labeling/drift.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { DRIFT, RESOURCE_NAMES } from '../../shared/settings.ts';
import { chromiumPath } from '../helpers/chromium.ts';
import { runCli } from '../helpers/cli.ts';
import { LabelerProcess, waitForEndpoints } from '../helpers/labeler-process.ts';
import { waitFor } from '../helpers/wait.ts';

const SAMPLES = join(DEFAULT_MODEL_DIR, 'samples');
const sample = (i: number) => `test-${String(i).padStart(5, '0')}.png`;

describe('the results page charts each schedule’s drift and samples a job (headless chromium)', () => {
  let dataDir: string;
  let up: LabelerProcess;
  let ui: LabelerProcess;
  let clients: AwsClients;
  let browser: Browser;
  let page: Page;
  let pageUrl: string;
  let report: DriftReport;
  const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir]);

  /** A firing as EventBridge Scheduler delivers it: a start message on the plan queue. */
  async function scheduledRun(prefix: string, at: string): Promise<string> {
    const idempotencyKey = `nightly@${at}`;
    const { QueueUrl } = await clients.sqs.send(
      new GetQueueUrlCommand({ QueueName: RESOURCE_NAMES.planQueue }),
    );
    await clients.sqs.send(
      new SendMessageCommand({
        QueueUrl,
        MessageBody: JSON.stringify({
          kind: 'start',
          request: {
            bucket: RESOURCE_NAMES.imagesBucket,
            prefix,
            target: 'lambda',
            mode: 'all',
            scheduleName: 'nightly',
            idempotencyKey,
          },
        }),
      }),
    );
    const jobId = jobIdFor(idempotencyKey);
    await waitFor(
      `scheduled run ${jobId} to finish`,
      async () => {
        const status = await cli('jobs', 'status', jobId, '--format', 'json');
        return status.code === 0 && JSON.parse(status.stdout).status === 'succeeded' ? true : undefined;
      },
      180_000,
    );
    return jobId;
  }

  before(async () => {
    const executablePath = chromiumPath();
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-ui-drift-'));
    up = new LabelerProcess(['local', 'up', '--data-dir', dataDir]);
    const endpoints = await waitForEndpoints(dataDir, up);
    clients = createAwsClients({ region: endpoints.region, endpoints: endpoints.endpoints, local: true });
    const put = async (key: string, file: string) =>
      clients.s3.send(
        new PutObjectCommand({
          Bucket: RESOURCE_NAMES.imagesBucket,
          Key: key,
          Body: await readFile(join(SAMPLES, file)),
        }),
      );
    for (let i = 0; i < 10; i++) {
      await put(`inbox/mixed/${i}.png`, sample(i));
      await put(`inbox/one/${i}.png`, sample(0));
    }
    await scheduledRun('inbox/mixed/', '2026-12-01T02:00:00Z');
    await scheduledRun('inbox/one/', '2026-12-02T02:00:00Z');
    const drift = await cli('jobs', 'schedule', 'drift', 'nightly', '--format', 'json');
    assert.equal(drift.code, 0, drift.stderr);
    report = JSON.parse(drift.stdout) as DriftReport;

    ui = new LabelerProcess(['ui', '--data-dir', dataDir]);
    pageUrl = (await ui.waitForOutput(/Results page: (http:\/\/127\.0\.0\.1:\d+\/)/))[1] as string;
    browser = await chromium.launch({ executablePath, headless: true });
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.setDefaultTimeout(120_000);
  });

  after(async () => {
    await browser?.close();
    clients?.s3.destroy();
    clients?.sqs.destroy();
    clients?.dynamo.destroy();
    ui?.kill('SIGINT');
    await ui?.exited;
    up?.kill('SIGINT');
    await up?.exited;
    await rm(dataDir, { recursive: true, force: true });
  });

  it('draws one point per run, the one-class run over the threshold line and the baseline under it', async () => {
    await page.goto(`${pageUrl}#/jobs`);
    const chart = page.locator('figure.drift-chart[data-schedule="nightly"]');
    await chart.waitFor();
    const points = await chart.locator('circle.run').evaluateAll((cs) =>
      cs.map((c) => ({
        job: c.getAttribute('data-job'),
        divergence: Number(c.getAttribute('data-divergence')),
        over: c.classList.contains('over'),
        cy: Number(c.getAttribute('cy')),
      })),
    );
    assert.deepEqual(
      points.map((p) => [p.job, p.divergence, p.over]),
      report.runs.map((r) => [r.jobId, r.divergence, r.overThreshold]),
      'the chart shows what `jobs schedule drift` prints',
    );
    assert.deepEqual(
      points.map((p) => p.over),
      [false, true],
    );
    const line = chart.locator('line.threshold');
    assert.equal(Number(await line.getAttribute('data-threshold')), DRIFT.threshold);
    const lineY = Number(await line.getAttribute('y1'));
    // SVG y grows downwards: over the threshold is above the line.
    assert.ok((points[1]?.cy ?? Infinity) < lineY, 'the drifted run is above the line');
    assert.ok((points[0]?.cy ?? -Infinity) > lineY, 'the baseline is below it');
    assert.match((await chart.locator('figcaption').textContent()) ?? '', /1 over the threshold/);
  });

  it('the job form takes a sample: the estimate and the job count only the sampled objects', async () => {
    await page.goto(`${pageUrl}#/jobs`);
    const form = page.getByRole('form', { name: 'Start a job' });
    await form.locator('input[name="prefix"]').fill('inbox/mixed/');
    await form.locator('select[name="mode"]').selectOption('all');
    await form.locator('input[name="sample"]').fill('3');
    await form.getByRole('button', { name: 'Estimate' }).click();
    const estimate = page.locator('section[aria-label="Job estimate"] strong').first();
    await estimate.waitFor();
    assert.equal(await estimate.textContent(), '3');
    await form.getByRole('button', { name: 'Start job' }).click();
    const started = await waitFor(
      'the form to say which job started',
      async () => /started (j-[0-9a-f]+)/.exec((await form.getByRole('status').textContent()) ?? '')?.[1],
      60_000,
    );
    const status = await cli('jobs', 'status', started, '--format', 'json');
    assert.equal(status.code, 0, status.stderr);
    const job = JSON.parse(status.stdout) as { total: number; sample?: { size: string } };
    assert.equal(job.sample?.size, '3');
    await waitFor(
      'the sampled job to be planned',
      async () => {
        const s = JSON.parse((await cli('jobs', 'status', started, '--format', 'json')).stdout);
        return s.planningDone ? s : undefined;
      },
      60_000,
    ).then((s) => assert.equal(s.total, 3));
    await form.locator('input[name="sample"]').fill('lots');
    await form.getByRole('button', { name: 'Start job' }).click();
    await waitFor(
      'the refusal with its code',
      async () =>
        ((await form.getByRole('status').textContent()) ?? '').includes('job/invalid-sample') || undefined,
      30_000,
    );
  });
});
