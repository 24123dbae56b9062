/// <reference lib="dom" />
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import type { Evaluation } from '../../shared/labeling/evaluate.ts';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../../shared/paths.ts';
import { RESOURCE_NAMES } from '../../shared/settings.ts';
import { chromiumPath } from '../helpers/chromium.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';
import { LabelerProcess, waitForEndpoints } from '../helpers/labeler-process.ts';

const SAMPLES = join(DEFAULT_MODEL_DIR, 'samples');
const SAMPLES_CSV = join(DEFAULT_MODEL_DIR, 'samples.csv');
const PREFIX = 'eval-ui/';
const IMAGES = 30;
/** Not an image, with a truth label: the job's failed one, in the (none) column. */
const BROKEN = 'test-00005.png';

describe('the results page shows a job evaluated against truth (headless chromium)', () => {
  let dataDir: string;
  let up: LabelerProcess;
  let ui: LabelerProcess;
  let clients: AwsClients;
  let browser: Browser;
  let page: Page;
  let pageUrl: string;
  let jobId = '';
  let expected: Evaluation;
  const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir]);

  before(async () => {
    const executablePath = chromiumPath();
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-ui-eval-'));
    up = new LabelerProcess(['local', 'up', '--data-dir', dataDir]);
    const endpoints = await waitForEndpoints(dataDir, up);
    clients = createAwsClients({ region: endpoints.region, endpoints: endpoints.endpoints, local: true });
    const files = (await readdir(SAMPLES))
      .filter((f) => f.endsWith('.png'))
      .sort()
      .slice(0, IMAGES);
    await Promise.all(
      files.map(async (f) =>
        clients.s3.send(
          new PutObjectCommand({
            Bucket: RESOURCE_NAMES.imagesBucket,
            Key: `${PREFIX}${f}`,
            Body: f === BROKEN ? Buffer.from('not an image') : await readFile(join(SAMPLES, f)),
          }),
        ),
      ),
    );
    const job = await cli('jobs', 'start', '--prefix', PREFIX, '--mode', 'all', '--wait', '--format', 'json');
    assert.equal(job.code, 0, job.stderr);
    jobId = String(jsonLines(job.stdout)[0]?.jobId);
    const evaluated = await cli('evaluate', '--job', jobId, '--truth', SAMPLES_CSV, '--format', 'json');
    assert.equal(evaluated.code, 0, evaluated.stderr);
    expected = JSON.parse(evaluated.stdout) as Evaluation;
    assert.equal(expected.images, IMAGES);
    assert.equal(expected.failed, 1);

    ui = new LabelerProcess(['ui', '--data-dir', dataDir, '--truth', SAMPLES_CSV]);
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

  it('links a job to its evaluation and shows the accuracy "labeler evaluate" prints', async () => {
    await page.goto(`${pageUrl}#/jobs`);
    await page.locator(`[data-job="${jobId}"] a`, { hasText: 'Evaluation' }).click();
    await page.waitForURL(/#\/evaluate\?job=/);
    const top1 = page.locator('[data-metric="top1"] strong');
    await top1.waitFor();
    assert.equal(await top1.textContent(), `${((expected.top1.accuracy ?? 0) * 100).toFixed(1)} %`);
  });

  it('draws the confusion matrix as a heat map summing to the images, as the JSON has it', async () => {
    const cells = page.locator('table.heatmap td');
    await cells.first().waitFor();
    const counts = await cells.evaluateAll((tds) => tds.map((td) => Number(td.getAttribute('data-count'))));
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      IMAGES,
    );
    assert.deepEqual(counts, expected.confusion.matrix.flat());
    const headers = await page.locator('table.heatmap thead th').allTextContents();
    assert.deepEqual(headers.slice(1), [...expected.confusion.columns]);
  });

  it('opens the images behind a cell: the failed image is in its (none) cell', async () => {
    const csv = await readFile(SAMPLES_CSV, 'utf8');
    const label = /^test-00005\.png,(.*)$/m.exec(csv)?.[1] as string;
    const cell = page.locator(`table.heatmap td[data-row="${label}"][data-column="(none)"] button`);
    await cell.click();
    const link = page.locator('.cell-images a[data-key]');
    await link.first().waitFor();
    assert.deepEqual(await link.evaluateAll((as) => as.map((a) => a.getAttribute('data-key'))), [
      `${PREFIX}${BROKEN}`,
    ]);
    await link.first().click();
    await page.waitForURL(/#\/image\?key=/);
    await page.getByText('image/').first().waitFor();
    await page.goBack();
  });

  it('shows per-class bars, the reliability diagram and the threshold curve', async () => {
    await page.goto(`${pageUrl}#/evaluate?job=${encodeURIComponent(jobId)}`);
    const classes = page.locator('.class-bars li[data-label]');
    await classes.first().waitFor();
    assert.equal(await classes.count(), expected.classes.length);
    const bins = await page
      .locator('svg.reliability rect.bin')
      .evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('data-images'))));
    assert.equal(
      bins.reduce((a, b) => a + b, 0),
      expected.ok,
    );
    const points = await page
      .locator('svg.thresholds circle.point')
      .evaluateAll((cs) =>
        cs.map((c) => [Number(c.getAttribute('data-min-score')), Number(c.getAttribute('data-share'))]),
      );
    // A point where some image is kept (0 to 0.95 by 0.05, then 0.99, on the page).
    assert.ok(points.length >= 2 && points.length <= 21, `${points.length} points`);
    assert.deepEqual(points[0], [0, expected.ok / expected.images]);
    assert.ok(
      points.every((p, i) => i === 0 || (p[1] as number) <= (points[i - 1]?.[1] as number)),
      'the share kept never grows with the minimum score',
    );
    assert.ok(
      ((await page.locator('svg.thresholds polyline.accuracy').getAttribute('points')) ?? '').length > 0,
    );
    // UI_SCREENSHOTS=docs/screenshots refreshes the README's pictures, as ui-browser.test.ts does.
    if (process.env.UI_SCREENSHOTS)
      await page.screenshot({
        path: join(PACKAGE_ROOT, process.env.UI_SCREENSHOTS, 'evaluation.png'),
        fullPage: true,
      });
  });
});
