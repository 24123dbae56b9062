/// <reference lib="dom" />
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import { type ImageResult, type ModelRef, printedScore } from '../../shared/labeling/results.ts';
import { waitForResults } from '../../shared/labeling/wait-for-results.ts';
import { readManifest } from '../../shared/model/manifest.ts';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../../shared/paths.ts';
import { RESOURCE_NAMES } from '../../shared/settings.ts';
import { chromiumPath } from '../helpers/chromium.ts';
import { LabelerProcess, waitForEndpoints } from '../helpers/labeler-process.ts';

const SAMPLES = join(PACKAGE_ROOT, 'models', 'fashion-efficientnet', 'samples');
const BUCKET = RESOURCE_NAMES.imagesBucket;
const CORRUPT_KEY = 'images/bad/corrupt.jpg';
const CORRUPT = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(200, 7)]);
/** Outside images/, so nothing labels these until the page starts a job over them. */
const JOB_PREFIX = 'datasets/ui/';
const JOB_IMAGES = 40;
const JOB_CORRUPT_KEY = `${JOB_PREFIX}corrupt.jpg`;
const LABEL = 'Sneaker';
const MIN_SCORE = 0.5;
const PAGE_SIZE = 5;
/**
 * Where the views' screenshots go: a temporary folder by default, so a test run leaves the
 * tree clean; `UI_SCREENSHOTS=docs/screenshots` refreshes the README's pictures.
 */
const SCREENSHOTS = process.env.UI_SCREENSHOTS ? join(PACKAGE_ROOT, process.env.UI_SCREENSHOTS) : undefined;

describe('labeler ui in a real browser (headless chromium) against a local stack', () => {
  let dataDir: string;
  let shots: string;
  let up: LabelerProcess;
  let clients: AwsClients;
  let store: DynamoResultsStore;
  let model: ModelRef;
  let browser: Browser;
  let page: Page;
  let pageUrl: string;
  const results = new Map<string, ImageResult>();
  let jobKeys: string[] = [];

  before(async () => {
    // First, so a missing browser fails the suite with its reason rather than after a stack boots.
    const executablePath = chromiumPath();
    dataDir = await mkdtemp(join(tmpdir(), 'labeler-ui-'));
    shots = SCREENSHOTS ?? join(dataDir, 'screenshots');
    await mkdir(shots, { recursive: true });
    const manifest = await readManifest(DEFAULT_MODEL_DIR);
    model = { id: manifest.id, version: manifest.version };
    up = new LabelerProcess(['local', 'up', '--data-dir', dataDir]);
    const endpoints = await waitForEndpoints(dataDir, up);
    pageUrl = (await up.waitForOutput(/Results page: (http:\/\/127\.0\.0\.1:\d+\/)/))[1] as string;
    clients = createAwsClients({ region: endpoints.region, endpoints: endpoints.endpoints, local: true });
    store = new DynamoResultsStore(clients.db, RESOURCE_NAMES.resultsTable);

    // The bundled samples, labeled by the stack's S3 notifications, and one corrupt JPEG.
    const files = (await readdir(SAMPLES)).filter((f) => f.endsWith('.png')).sort();
    const objects: Array<[string, Buffer]> = await Promise.all(
      files.map(async (f) => [`images/samples/${f}`, await readFile(join(SAMPLES, f))] as [string, Buffer]),
    );
    objects.push([CORRUPT_KEY, CORRUPT]);
    const uploaded = [];
    for (let i = 0; i < objects.length; i += 25) {
      uploaded.push(
        ...(await Promise.all(
          objects.slice(i, i + 25).map(async ([key, body]) => {
            const put = await clients.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
            return { bucket: BUCKET, key, eTag: (put.ETag ?? '').replaceAll('"', '') };
          }),
        )),
      );
    }
    const labeled = await waitForResults(store, uploaded, model, { timeoutMs: 300_000 });
    assert.equal(labeled.pending.length, 0, `no result for ${labeled.pending.map((p) => p.key).join(', ')}`);
    for (const [id, result] of labeled.results) results.set(id, result);
    const jobObjects: Array<[string, Buffer]> = objects
      .slice(0, JOB_IMAGES)
      .map(([key, body]) => [key.replace('images/samples/', JOB_PREFIX), body]);
    jobObjects.push([JOB_CORRUPT_KEY, CORRUPT]);
    await Promise.all(
      jobObjects.map(([key, body]) =>
        clients.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body })),
      ),
    );
    jobKeys = jobObjects.map(([key]) => key);

    browser = await chromium.launch({ executablePath, headless: true });
    page = await openPage({ viewport: { width: 1000, height: 720 } });
  });

  after(async () => {
    await browser?.close();
    clients?.s3.destroy();
    clients?.sqs.destroy();
    clients?.dynamo.destroy();
    up?.kill('SIGINT');
    await up?.exited;
    await rm(dataDir, { recursive: true, force: true });
  });

  /** The waits assert order, not speed: a busy machine gets two minutes where Playwright's default is 30 s. */
  async function openPage(options?: Parameters<Browser['newPage']>[0]): Promise<Page> {
    const opened = await browser.newPage(options);
    opened.setDefaultTimeout(120_000);
    return opened;
  }

  const keysOnPage = () =>
    page.locator('.gallery a[data-key]').evaluateAll((as) => as.map((a) => a.getAttribute('data-key')));
  const screenshot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`) });

  /** Every image whose label scored at least the minimum, best first, as the store answers the query. */
  async function expectedByLabel(): Promise<string[]> {
    const keys: string[] = [];
    let cursor: string | undefined;
    do {
      const p = await store.queryByLabel({
        model,
        label: LABEL,
        minScore: MIN_SCORE,
        limit: 100,
        ...(cursor ? { cursor } : {}),
      });
      keys.push(...p.items.map((h) => h.key));
      cursor = p.cursor;
    } while (cursor);
    return keys;
  }

  it("keeps the user's filter choices when the gallery's first page arrives after them (its answer held back)", async () => {
    // On a busy machine the first page can arrive after the user has chosen a filter; holding
    // the answer back makes that order certain.
    const held = await openPage();
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let heldBack = 0;
    await held.route(/\/api\/images\?/, async (route) => {
      heldBack++;
      await released;
      await route.continue();
    });
    await held.goto(`${pageUrl}#/gallery`);
    await held.getByLabel('Label').selectOption(LABEL);
    await held.getByLabel('Minimum score').fill('0.7');
    await held.getByRole('textbox', { name: 'Key prefix' }).fill('ignored/');
    assert.equal(heldBack, 1, 'the first page was asked for and is held back');
    release();
    await held.getByText(/on this page/).waitFor();
    assert.equal(await held.getByLabel('Label').inputValue(), LABEL);
    assert.equal(await held.getByLabel('Minimum score').inputValue(), '0.7');
    await held.getByRole('button', { name: 'Show' }).click();
    await held.waitForFunction(() => location.hash.includes('label='));
    assert.match(held.url(), new RegExp(`#/gallery\\?label=${LABEL}&min=0\\.7$`));
    await held.close();
  });

  it('filters the gallery by label and minimum score, page by page, showing exactly what the query returns', async () => {
    const expected = await expectedByLabel();
    assert.ok(
      expected.length > PAGE_SIZE,
      `the samples need more than one page of ${LABEL} (got ${expected.length})`,
    );

    await page.goto(`${pageUrl}#/gallery?limit=${PAGE_SIZE}`);
    await page.getByLabel('Label').selectOption(LABEL);
    await page.getByLabel('Minimum score').fill(String(MIN_SCORE));
    await page.getByRole('button', { name: 'Show' }).click();
    await page.waitForFunction(
      (label) =>
        location.hash.includes(`label=${label}`) && document.querySelectorAll('.gallery a').length > 0,
      LABEL,
    );
    // The filter lives in the URL: this hash is the view's deep link.
    const deepLink = page.url();
    assert.match(deepLink, new RegExp(`label=${LABEL}&min=${MIN_SCORE}`));

    const shown: string[] = [];
    for (let pages = 1; ; pages++) {
      const keys = (await keysOnPage()) as string[];
      assert.ok(keys.length <= PAGE_SIZE);
      shown.push(...keys);
      if (pages === 1) {
        // Thumbnails load through the signed S3 URLs (the emulator checks nothing, AWS would).
        const first = page.locator('.gallery img').first();
        await first.evaluate((img: HTMLImageElement) => img.decode());
        assert.ok(await first.evaluate((img: HTMLImageElement) => img.naturalWidth > 0), 'thumbnail loaded');
        assert.equal(await first.getAttribute('alt'), keys[0]);
        assert.equal(await first.getAttribute('loading'), 'lazy');
        await screenshot('gallery');
      }
      const next = page.getByRole('link', { name: 'Next page' });
      if ((await next.count()) === 0) break;
      await next.click();
      await page.waitForFunction((seen) => {
        const first = document.querySelector('.gallery a[data-key]')?.getAttribute('data-key');
        return first !== undefined && first !== null && first !== seen;
      }, keys[0]);
      assert.ok(pages < 100, 'paging ends');
    }
    assert.deepEqual(shown, expected);

    // The deep link opened afresh shows the same first page.
    const other = await openPage();
    await other.goto(deepLink);
    await other.waitForSelector('.gallery a[data-key]');
    const firstPage = await other
      .locator('.gallery a[data-key]')
      .evaluateAll((as) => as.map((a) => a.getAttribute('data-key')));
    assert.deepEqual(firstPage, expected.slice(0, PAGE_SIZE));
    await other.close();
  });

  it('opens an image from the gallery by keyboard and shows its top-k scores as stored', async () => {
    await page.goto(`${pageUrl}#/gallery?label=${LABEL}&min=${MIN_SCORE}`);
    await page.waitForSelector('.gallery a[data-key]');
    const firstKey = (await keysOnPage())[0] as string;
    // Tab through the page until the first thumbnail has the focus, then Enter.
    for (let i = 0; i < 30; i++) {
      await page.keyboard.press('Tab');
      if (await page.evaluate((key) => document.activeElement?.getAttribute('data-key') === key, firstKey))
        break;
    }
    assert.equal(
      await page.evaluate(() => document.activeElement?.getAttribute('data-key')),
      firstKey,
      'focus reached it',
    );
    await page.keyboard.press('Enter');
    await page.waitForSelector('.bars li[data-label]');
    assert.ok(page.url().includes(`#/image?key=${encodeURIComponent(firstKey)}`));

    const rows = await page
      .locator('.bars li[data-label]')
      .evaluateAll((lis) =>
        lis.map((li) => [
          li.getAttribute('data-label'),
          Number(li.getAttribute('data-score')),
          li.textContent,
        ]),
      );
    const stored = results.get(`${BUCKET}/${firstKey}`);
    assert.ok(stored);
    assert.deepEqual(
      rows.map(([label, score]) => [label, score]),
      stored.labels.map((l) => [l.label, printedScore(l.score)]),
    );
    assert.equal(rows[0]?.[0], LABEL);
    assert.ok(String(rows[0]?.[2]).includes(`${((stored.labels[0]?.score ?? NaN) * 100).toFixed(1)} %`));
    assert.equal(await page.locator('.image-view img').getAttribute('alt'), firstKey);
    await screenshot('image');
  });

  let jobId = '';

  it('starts a job from the page and follows its progress to 100 %', async () => {
    await page.goto(`${pageUrl}#/jobs`);
    await page.getByLabel(/Key prefix/).fill(JOB_PREFIX);
    await page.getByRole('button', { name: 'Start job' }).click();
    const started = await page
      .getByRole('status')
      .filter({ hasText: /^started / })
      .textContent({ timeout: 60_000 });
    jobId = String(started).replace(/^started /, '');
    const card = page.locator(`article[data-job="${jobId}"]`);
    await card.locator('.status.succeeded').waitFor({ timeout: 300_000 });
    assert.equal(await card.locator('progress').getAttribute('value'), '100');
    assert.equal(await card.locator('.pct').textContent(), '100 %');
    const text = String(await card.textContent());
    assert.match(text, new RegExp(`${jobKeys.length}/${jobKeys.length} done`));
    assert.match(text, new RegExp(`labeled ${JOB_IMAGES}(?!\\d)`));
    assert.match(text, /failed 1(?!\d)/);
    assert.match(String(await card.textContent()), /\d+\.\d img\/s/);
    await screenshot('jobs');
  });

  it("lists the job's failures grouped by error code, with the corrupt file's key", async () => {
    assert.ok(jobId, 'the job test ran');
    await page
      .locator(`article[data-job="${jobId}"]`)
      .getByRole('link', { name: /Failures/ })
      .click();
    const group = page.locator('section[data-code="image/decode-failed"]');
    await group.waitFor();
    assert.deepEqual(
      await group.locator('a[data-key]').evaluateAll((as) => as.map((a) => a.getAttribute('data-key'))),
      [JOB_CORRUPT_KEY],
    );
    assert.equal(await page.locator('section[data-code]').count(), 1);
    await screenshot('failures');
  });

  it("shows a histogram of the job's top labels that accounts for every image", async () => {
    await page.goto(`${pageUrl}#/jobs`);
    await page.locator(`article[data-job="${jobId}"]`).getByRole('link', { name: 'Top labels' }).click();
    await page.waitForSelector('.bars li[data-count]');
    const bars = await page
      .locator('.bars li[data-count]')
      .evaluateAll((lis) =>
        lis.map((li) => [li.getAttribute('data-label'), Number(li.getAttribute('data-count'))] as const),
      );
    const expected = new Map<string, number>();
    const jobResults = await store.findExisting(
      jobKeys.map((key) => ({ bucket: BUCKET, key })),
      model,
    );
    assert.equal(jobResults.size, jobKeys.length);
    for (const r of jobResults.values()) {
      const top = r.labels[0]?.label;
      if (r.status === 'ok' && top) expected.set(top, (expected.get(top) ?? 0) + 1);
    }
    assert.deepEqual(new Map(bars), expected);
    assert.ok(
      bars.every(([, n], i) => i === 0 || n <= (bars[i - 1]?.[1] ?? 0)),
      'largest first',
    );
    await screenshot('histogram');
  });

  it('fits a phone-width screen without sideways scrolling', async () => {
    const phone = await openPage({ viewport: { width: 390, height: 800 } });
    await phone.goto(`${pageUrl}#/gallery?prefix=images/bad/`);
    await phone.waitForSelector('.gallery a[data-key]');
    assert.match(String(await phone.locator('.gallery').textContent()), /image\/decode-failed/);
    assert.ok(
      await phone.evaluate(() => document.documentElement.scrollWidth <= innerWidth),
      'no horizontal overflow',
    );
    await phone.goto(`${pageUrl}#/gallery?label=${LABEL}&min=${MIN_SCORE}&limit=6`);
    await phone.waitForSelector('.gallery a[data-key]');
    assert.ok(
      await phone.evaluate(() => document.documentElement.scrollWidth <= innerWidth),
      'no horizontal overflow',
    );
    await phone.screenshot({ path: join(shots, 'phone.png') });
    await phone.close();
  });

  it('answers only its own page: a foreign Host or a cross-site form post is refused', async () => {
    const call = (
      path: string,
      init: { method?: string; headers?: Record<string, string>; body?: string } = {},
    ) =>
      new Promise<{ status: number; body: string }>((done, fail) => {
        const req = request(
          new URL(path, pageUrl),
          { method: init.method ?? 'GET', headers: init.headers ?? {} },
          (res) => {
            let body = '';
            res.on('data', (d: Buffer) => {
              body += d.toString();
            });
            res.on('end', () => done({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', fail);
        req.end(init.body);
      });
    assert.equal((await call('/api/config')).status, 200);
    // DNS rebinding: another name that resolves to 127.0.0.1.
    const rebound = await call('/api/config', { headers: { host: 'attacker.example:80' } });
    assert.equal(rebound.status, 403);
    assert.match(rebound.body, /http\/forbidden/);
    // A form on another site can post text/plain without a preflight; starting a job needs JSON.
    const form = await call('/api/jobs', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ prefix: '' }),
    });
    assert.equal(form.status, 415);
    const bad = await call('/api/labels?label=Sneaker&minScore=2');
    assert.equal(bad.status, 400);
    assert.match(bad.body, /ui\/bad-request/);
  });
});
