import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Job, JobRequest, JobsService } from '../../shared/labeling/jobs.ts';
import { startUiServer, type UiServer } from '../../ui/server.ts';

const MODEL = { id: 'fashion-efficientnet', version: '1.0.0' };

/** The page's API over stub adapters: what it answers, not what a stack holds. */
describe('results page API: bad requests are 4xx with a code, 5xx bodies fixed words, foreign origins refused', () => {
  let ui: UiServer;
  const started: JobRequest[] = [];
  let queried = 0;
  const estimated: Array<[string, string]> = [];

  before(async () => {
    const jobs: JobsService = {
      start: async (req) => {
        started.push(req);
        return { jobId: 'j-1', ...req } as unknown as Job;
      },
      get: async () => {
        throw new Error('secret detail of a broken store');
      },
      list: async () => {
        throw new Error('secret detail of a broken store');
      },
      cancel: async () => {
        throw new Error('not used');
      },
      failures: async function* () {},
      results: async function* () {},
    };
    ui = await startUiServer({
      stack: { kind: 'local', name: 'local' },
      bucket: 'labeler-images',
      model: MODEL,
      labels: ['Sneaker', 'Bag'],
      results: {
        getByImage: async () => [],
        queryByLabel: async () => {
          queried++;
          return { items: [] };
        },
      },
      jobs,
      listKeys: async () => ({ items: [] }),
      signedUrl: async (bucket, key) => `http://127.0.0.1:1/${bucket}/${key}`,
      estimate: async (prefix, mode) => {
        estimated.push([prefix, mode]);
        return { dryRun: true, prefix, mode, images: 3 };
      },
    });
  });
  after(async () => {
    await ui.close();
  });

  function call(
    path: string,
    init: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ): Promise<{ status: number; body: string; allow?: string }> {
    return new Promise((done, fail) => {
      const req = request(
        new URL(path, ui.url),
        { method: init.method ?? 'GET', headers: init.headers ?? {} },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d.toString();
          });
          res.on('end', () =>
            done({
              status: res.statusCode ?? 0,
              body,
              ...(res.headers.allow ? { allow: res.headers.allow } : {}),
            }),
          );
        },
      );
      req.on('error', fail);
      req.end(init.body);
    });
  }

  const json = { 'content-type': 'application/json' };

  it('POST /api/jobs with a body that is not an object is 400 ui/bad-request', async () => {
    for (const body of ['null', '[]', '"datasets/"', '3']) {
      const res = await call('/api/jobs', { method: 'POST', headers: json, body });
      assert.equal(res.status, 400, `${body}: ${res.body}`);
      assert.match(res.body, /ui\/bad-request/);
      assert.match(res.body, /JSON object/);
    }
    assert.equal(started.length, 0);
  });

  it('GET /api/estimate hands prefix and mode (stale by default) to the estimate; another mode is 400', async () => {
    const res = await call('/api/estimate?prefix=datasets%2Fh1&mode=all');
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(JSON.parse(res.body), { dryRun: true, prefix: 'datasets/h1', mode: 'all', images: 3 });
    assert.equal((await call('/api/estimate?prefix=x/')).status, 200);
    assert.deepEqual(estimated, [
      ['datasets/h1', 'all'],
      ['x/', 'stale'],
    ]);
    const bad = await call('/api/estimate?prefix=x/&mode=some');
    assert.equal(bad.status, 400);
    assert.match(bad.body, /ui\/bad-request/);
    assert.equal(estimated.length, 2, 'a bad request estimates nothing');
    assert.equal(started.length, 0, 'an estimate starts no job');
  });

  it('a job id that is not valid percent-encoding is 400, not 500 "URI malformed"', async () => {
    const res = await call('/api/jobs/%E0%A4%A');
    assert.equal(res.status, 400, res.body);
    assert.match(res.body, /ui\/bad-request/);
    assert.doesNotMatch(res.body, /URI malformed/);
  });

  it('the comparison without --compare models is 400 ui/no-compare, saying how to attach them', async () => {
    const res = await call('/api/compare?prefix=images/');
    assert.equal(res.status, 400);
    const body = JSON.parse(res.body) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'ui/no-compare');
    assert.match(body.error.message, /labeler ui --compare <A>,<B>/);
  });

  it('a label the model does not have is 400 ui/unknown-label naming the labels, without a query', async () => {
    const res = await call('/api/labels?label=NoSuch');
    assert.equal(res.status, 400, res.body);
    assert.match(res.body, /ui\/unknown-label/);
    assert.match(res.body, /Sneaker/);
    assert.equal(queried, 0);
    assert.equal((await call('/api/labels?label=Sneaker')).status, 200);
  });

  it('a known path with a method it does not take is 405 with Allow; an unknown path stays 404', async () => {
    const del = await call('/api/jobs', { method: 'DELETE' });
    assert.equal(del.status, 405, del.body);
    assert.match(del.body, /http\/method-not-allowed/);
    assert.equal(del.allow, 'GET, POST');
    assert.equal((await call('/api/config', { method: 'PUT' })).status, 405);
    assert.equal((await call('/api/nothing', { method: 'DELETE' })).status, 404);
  });

  it('a 5xx body is fixed words, never the exception message', async () => {
    for (const path of ['/api/jobs', '/api/jobs/j-1']) {
      const res = await call(path);
      assert.equal(res.status, 500, res.body);
      assert.match(res.body, /internal\/unexpected/);
      assert.doesNotMatch(res.body, /secret detail/);
    }
  });

  it('POST /api/jobs from another origin is refused (403) and starts nothing; its own origin starts a job', async () => {
    const port = new URL(ui.url).port;
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${Number(port) + 1}`]) {
      const res = await call('/api/jobs', {
        method: 'POST',
        headers: { ...json, origin },
        body: JSON.stringify({ prefix: 'datasets/' }),
      });
      assert.equal(res.status, 403, `${origin}: ${res.body}`);
      assert.match(res.body, /http\/forbidden/);
    }
    assert.equal(started.length, 0, 'no job started from a foreign origin');
    const own = await call('/api/jobs', {
      method: 'POST',
      headers: { ...json, origin: `http://127.0.0.1:${port}` },
      body: JSON.stringify({ prefix: 'datasets/' }),
    });
    assert.equal(own.status, 201, own.body);
    assert.equal(started.length, 1);
    assert.equal(started[0]?.prefix, 'datasets/');
  });
});

describe('results page API: a job carries done, counted once on the server', () => {
  it('GET /api/jobs and /api/jobs/:id send done = labeled + failed + skipped + cancelled', async () => {
    const job = {
      jobId: 'j-2',
      status: 'cancelling',
      total: 20,
      labeled: 7,
      failed: 2,
      skipped: 3,
      cancelled: 1,
      planningDone: true,
    } as unknown as Job;
    const ui = await startUiServer({
      stack: { kind: 'local', name: 'local' },
      bucket: 'labeler-images',
      model: MODEL,
      labels: ['Sneaker'],
      results: { getByImage: async () => [], queryByLabel: async () => ({ items: [] }) },
      jobs: {
        start: async () => job,
        get: async () => job,
        list: async () => [job],
        cancel: async () => job,
        failures: async function* () {},
        results: async function* () {},
      },
      listKeys: async () => ({ items: [] }),
      signedUrl: async (bucket, key) => `http://127.0.0.1:1/${bucket}/${key}`,
    });
    try {
      const list = (await (await fetch(new URL('/api/jobs', ui.url))).json()) as {
        items: Array<{ done: number }>;
      };
      assert.equal(list.items[0]?.done, 13);
      const one = (await (await fetch(new URL('/api/jobs/j-2', ui.url))).json()) as { done: number };
      assert.equal(one.done, 13);
    } finally {
      await ui.close();
    }
  });
});
