/// <reference lib="dom" />
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import type { Comparison } from '../../shared/labeling/compare.ts';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../../shared/paths.ts';
import { RESOURCE_NAMES } from '../../shared/settings.ts';
import { chromiumPath } from '../helpers/chromium.ts';
import { runCli } from '../helpers/cli.ts';
import { LabelerProcess, waitForEndpoints } from '../helpers/labeler-process.ts';
import { waitFor } from '../helpers/wait.ts';

const SAMPLES = join(DEFAULT_MODEL_DIR, 'samples');
const SAMPLES_CSV = join(DEFAULT_MODEL_DIR, 'samples.csv');
/** Under the upload filter: each upload is labeled by the stack's model. */
const PREFIX = 'images/cmp-ui/';
const IMAGES = 30;

/**
 * The stack labels the samples with the bundled model, then (restarted on the same results
 * table) with its INT8 variant; the page compares the two as "labeler compare" does.
 */
describe('the results page compares two models over a prefix (headless chromium)', () => {
  let dir: string;
  let dataDir: string;
  let int8: string;
  let up: LabelerProcess | undefined;
  let ui: LabelerProcess | undefined;
  let clients: AwsClients | undefined;
  let browser: Browser;
  let page: Page;
  let pageUrl: string;
  let expected: Comparison;
  const files: string[] = [];
  const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir]);

  const start = async (modelId: string, ...args: string[]) => {
    up = new LabelerProcess(['local', 'up', '--data-dir', dataDir, ...args]);
    const endpoints = await waitForEndpoints(dataDir, up);
    clients = createAwsClients({ region: endpoints.region, endpoints: endpoints.endpoints, local: true });
    const s3 = clients.s3;
    await Promise.all(
      files.map(async (f) =>
        s3.send(
          new PutObjectCommand({
            Bucket: RESOURCE_NAMES.imagesBucket,
            Key: `${PREFIX}${f}`,
            Body: await readFile(join(SAMPLES, f)),
          }),
        ),
      ),
    );
    const store = new DynamoResultsStore(clients.db, RESOURCE_NAMES.resultsTable);
    for (const f of files)
      await waitFor(
        `${f} labeled by ${modelId}`,
        async () =>
          (await store.getByImage(RESOURCE_NAMES.imagesBucket, `${PREFIX}${f}`)).some(
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
    const executablePath = chromiumPath();
    dir = await mkdtemp(join(tmpdir(), 'labeler-ui-compare-'));
    dataDir = join(dir, 'data');
    int8 = join(dir, 'int8');
    const quantize = await runCli([
      'model',
      'quantize',
      '--calibration',
      SAMPLES,
      '--images',
      '20',
      '--out',
      int8,
    ]);
    assert.equal(quantize.code, 0, quantize.stderr);
    files.push(
      ...(await readdir(SAMPLES))
        .filter((f) => f.endsWith('.png'))
        .sort()
        .slice(0, IMAGES),
    );
    await start('fashion-efficientnet');
    await stop();
    await start('fashion-efficientnet-int8', '--model', int8);

    const compared = await cli(
      'compare',
      '--model',
      DEFAULT_MODEL_DIR,
      '--model',
      int8,
      '--prefix',
      PREFIX,
      '--truth',
      SAMPLES_CSV,
      '--format',
      'json',
    );
    assert.equal(compared.code, 0, compared.stderr);
    expected = JSON.parse(compared.stdout) as Comparison;
    assert.equal(expected.images.compared, IMAGES);

    ui = new LabelerProcess([
      'ui',
      '--data-dir',
      dataDir,
      '--truth',
      SAMPLES_CSV,
      '--compare',
      `fashion-efficientnet@1.0.0,${int8}`,
    ]);
    pageUrl = (await ui.waitForOutput(/Results page: (http:\/\/127\.0\.0\.1:\d+\/)/))[1] as string;
    browser = await chromium.launch({ executablePath, headless: true });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.setDefaultTimeout(120_000);
  });

  after(async () => {
    await browser?.close();
    ui?.kill('SIGINT');
    await ui?.exited;
    await stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('links the gallery of a prefix to the comparison, which shows the agreement "labeler compare" prints', async () => {
    await page.goto(`${pageUrl}#/gallery?prefix=${encodeURIComponent(PREFIX)}`);
    await page.getByRole('link', { name: 'Compare the two models under this prefix' }).click();
    await page.waitForURL(/#\/compare\?prefix=/);
    const agreement = page.locator('[data-metric="agreement"] strong');
    await agreement.waitFor();
    assert.equal(await agreement.textContent(), `${((expected.agreement.rate ?? 0) * 100).toFixed(1)} %`);
  });

  it('draws the transition matrix as the JSON has it, its cells summing to the compared images', async () => {
    const cells = page.locator('table.transitions td');
    await cells.first().waitFor();
    const counts = await cells.evaluateAll((tds) => tds.map((td) => Number(td.getAttribute('data-count'))));
    assert.deepEqual(counts, expected.transitions.matrix.flat());
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      IMAGES,
    );
    const headers = await page.locator('table.transitions thead th').allTextContents();
    assert.deepEqual(headers.slice(1), [...expected.transitions.labels]);
  });

  it('shows the images that changed most side by side: the picture, A’s label and B’s', async () => {
    const items = page.locator('section[aria-label="Changed most"] li[data-key]');
    await items.first().waitFor();
    const shown = await items.evaluateAll((lis) =>
      lis.map((li) => ({
        key: li.getAttribute('data-key'),
        a: li.querySelector('[data-model="a"] strong')?.textContent,
        b: li.querySelector('[data-model="b"] strong')?.textContent,
        img: (li.querySelector('img') as HTMLImageElement | null)?.naturalWidth ?? 0,
      })),
    );
    assert.deepEqual(
      shown.map(({ key, a, b }) => ({ key, a, b })),
      expected.changed.map((c) => ({ key: c.image.key, a: c.a.label, b: c.b.label })),
    );
    // Each picture loads through its signed URL (lazy: scrolled into view first).
    for (const [i] of shown.entries()) {
      const img = items.nth(i).locator('img');
      await img.scrollIntoViewIfNeeded();
      await waitFor(`picture ${i} loaded`, () =>
        img.evaluate((el) => ((el as HTMLImageElement).naturalWidth > 0 ? true : undefined)),
      );
    }
    if (process.env.UI_SCREENSHOTS)
      await page.screenshot({
        path: join(PACKAGE_ROOT, process.env.UI_SCREENSHOTS, 'compare.png'),
        fullPage: true,
      });
  });
});
