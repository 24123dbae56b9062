import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CODE, httpStatusOf } from '../shared/error-codes.ts';
import { errorMessage, LabelerError } from '../shared/errors.ts';
import { type ComparedModel, Comparer } from '../shared/labeling/compare.ts';
import { DRIFT_JOBS_SCANNED, readScheduleDrift } from '../shared/labeling/drift.ts';
import { Evaluator, resultFromStore } from '../shared/labeling/evaluate.ts';
import { type GroundTruth, TruthSet } from '../shared/labeling/ground-truth.ts';
import { type JobMode, type JobsService, type JobTarget, jobView } from '../shared/labeling/jobs.ts';
import { type ModelRef, type Page, printedResult, type ResultsStore } from '../shared/labeling/results.ts';
import { parseSample, type SampleSpec } from '../shared/labeling/sample.ts';
import { PACKAGE_ROOT } from '../shared/paths.ts';
import { DRIFT } from '../shared/settings.ts';

/** The read side of the results the page shows: by image and by label, nothing else. */
export type ResultsReader = Pick<ResultsStore, 'getByImage' | 'queryByLabel'>;

/**
 * What the page reads and does, as the commands do it; the server only routes to these
 * and signs object URLs. The adapters are built by `labeler ui` from the stack it opened.
 */
export interface UiBackend {
  readonly stack: { readonly kind: 'local' | 'deployed'; readonly name: string };
  readonly bucket: string;
  readonly model: ModelRef;
  readonly labels: readonly string[];
  readonly results: ResultsReader;
  readonly jobs: JobsService;
  /** One page of the object keys under a prefix (S3 ListObjectsV2; the cursor is its continuation token). */
  listKeys(prefix: string, limit: number, cursor?: string): Promise<Page<string>>;
  /** A short-lived GET URL for an object, signed with the person's own credentials. */
  signedUrl(bucket: string, key: string): Promise<string>;
  /**
   * `jobs start --dry-run` for the job form: the count and each target's all-in cost and
   * wall time of a job over `prefix` of `bucket` (printedEstimate's shape); starts nothing.
   */
  estimate?(prefix: string, mode: JobMode, sample?: SampleSpec): Promise<Record<string, unknown>>;
  /** Ground truth for the evaluation view (`labeler ui --truth`), read again on each request. */
  readonly truth?: { readonly source: string; read(): Promise<GroundTruth> };
  /** Two models for the comparison view (`labeler ui --compare A,B`): A, then B. */
  readonly compare?: readonly [ComparedModel & { ref: ModelRef }, ComparedModel & { ref: ModelRef }];
}

export interface UiServer {
  readonly url: string;
  close(): Promise<void>;
}

const WEB = join(PACKAGE_ROOT, 'ui', 'web');
const MAX_LIMIT = 100;
/** The threshold curve's minimum scores: 0 to 0.95 by 0.05, then 0.99. */
const CURVE_THRESHOLDS = [...Array.from({ length: 20 }, (_, i) => i / 20), 0.99];

/** Bundles the page (preact + htm, one esbuild pass) and serves it with its JSON API on 127.0.0.1. */
export async function startUiServer(backend: UiBackend, options: { port?: number } = {}): Promise<UiServer> {
  // Loaded here, not at the top: every other command imports this module's callers.
  const { build } = await import('esbuild');
  const bundle = await build({
    entryPoints: [join(WEB, 'app.js')],
    bundle: true,
    format: 'esm',
    minify: true,
    write: false,
    target: 'es2022',
    logLevel: 'silent',
  });
  const assets: Record<string, { type: string; body: Buffer }> = {
    '/': { type: 'text/html; charset=utf-8', body: await readFile(join(WEB, 'index.html')) },
    '/app.js': {
      type: 'text/javascript; charset=utf-8',
      body: Buffer.from(bundle.outputFiles[0]?.contents ?? new Uint8Array()),
    },
    '/app.css': { type: 'text/css; charset=utf-8', body: await readFile(join(WEB, 'app.css')) },
  };

  let origin = '';
  const server: Server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => sendError(res, error));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Only the page itself: a foreign site's request (DNS rebinding, a form post) is refused.
    const port = new URL(origin).port;
    if (req.headers.host !== `127.0.0.1:${port}` && req.headers.host !== `localhost:${port}`)
      return send(res, 403, { error: forbidden('host') });
    const url = new URL(req.url ?? '/', origin);
    const path = url.pathname;
    const asset = assets[path];
    if (req.method === 'GET' && asset) {
      res.writeHead(200, {
        'content-type': asset.type,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      });
      res.end(asset.body);
      return;
    }
    if (!path.startsWith('/api/'))
      return send(res, 404, { error: { code: CODE.http.notFound, message: path } });
    const q = url.searchParams;
    const routePath = path.replace(/^\/api\/jobs\/[^/]+/, '/api/jobs/:id');
    const route = `${req.method} ${routePath}`;
    const allowed = ROUTES.filter((r) => r.endsWith(` ${routePath}`)).map((r) => r.split(' ')[0] as string);
    if (allowed.length > 0 && !allowed.includes(req.method ?? '')) {
      res.setHeader('allow', allowed.join(', '));
      return send(res, 405, {
        error: { code: CODE.http.methodNotAllowed, message: `${path} takes ${allowed.join(', ')}` },
      });
    }
    // A state-changing request from another origin (a page elsewhere posting here) is refused
    // here, not only by the browser's preflight; clients that send no Origin are not browsers.
    if (req.method !== 'GET' && req.headers.origin !== undefined && !sameOrigin(req.headers.origin, port))
      return send(res, 403, { error: forbidden('origin') });
    const jobId = decodedSegment(path.split('/')[3] ?? '');
    switch (route) {
      case 'GET /api/config':
        return send(res, 200, {
          stack: backend.stack,
          bucket: backend.bucket,
          model: backend.model,
          labels: backend.labels,
          truth: backend.truth?.source ?? null,
          compare: backend.compare ? { a: backend.compare[0].name, b: backend.compare[1].name } : null,
        });
      case 'GET /api/labels': {
        const label = required(q, 'label');
        // As `labeler query label` refuses it: a label the model does not have is the caller's mistake.
        if (!backend.labels.includes(label))
          throw new LabelerError(
            CODE.ui.unknownLabel,
            `unknown label ${JSON.stringify(label)}: model ${backend.model.id}@${backend.model.version} has the labels ${backend.labels.map((l) => JSON.stringify(l)).join(', ')}`,
          );
        const page = await backend.results.queryByLabel({
          model: backend.model,
          label,
          minScore: score(q.get('minScore')),
          limit: limit(q.get('limit')),
          ...(q.get('cursor') ? { cursor: q.get('cursor') as string } : {}),
        });
        const items = await Promise.all(
          page.items.map(async (hit) => ({ ...hit, url: await backend.signedUrl(hit.bucket, hit.key) })),
        );
        return send(res, 200, { items, ...(page.cursor ? { cursor: page.cursor } : {}) });
      }
      case 'GET /api/images': {
        const page = await backend.listKeys(
          q.get('prefix') ?? '',
          limit(q.get('limit')),
          q.get('cursor') ?? undefined,
        );
        const items = await Promise.all(page.items.map((key) => image(key)));
        return send(res, 200, { items, ...(page.cursor ? { cursor: page.cursor } : {}) });
      }
      case 'GET /api/image':
        return send(res, 200, await image(required(q, 'key')));
      case 'GET /api/jobs':
        return send(res, 200, {
          items: (await backend.jobs.list({ limit: limit(q.get('limit')) })).map(jobView),
        });
      case 'POST /api/jobs': {
        if (!req.headers['content-type']?.startsWith('application/json'))
          return send(res, 415, { error: forbidden('content type') });
        const parsed = JSON.parse((await readBody(req)) || '{}') as unknown;
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
          throw new LabelerError(
            CODE.ui.badRequest,
            'the body must be a JSON object, as {"prefix":"datasets/"}',
          );
        const body = parsed as Record<string, unknown>;
        const job = await backend.jobs.start({
          bucket: backend.bucket,
          prefix: String(body.prefix ?? ''),
          target: oneOf(body.target, ['lambda', 'gpu'] as const, 'lambda') satisfies JobTarget,
          mode: oneOf(body.mode, ['stale', 'all'] as const, 'stale') satisfies JobMode,
          ...(sampleOf(body.sample) ?? {}),
        });
        return send(res, 201, jobView(job));
      }
      case 'GET /api/estimate': {
        if (!backend.estimate)
          throw new LabelerError(CODE.ui.notAvailable, 'this server cannot estimate jobs');
        const mode = oneOf(q.get('mode') ?? undefined, ['stale', 'all'] as const, 'stale') satisfies JobMode;
        const sample = sampleOf(q.get('sample') ?? undefined)?.sample;
        return send(res, 200, await backend.estimate(q.get('prefix') ?? '', mode, sample));
      }
      case 'GET /api/drift': {
        // Every schedule that started a job among the newest, each against its baseline.
        const jobs = await backend.jobs.list({ limit: DRIFT_JOBS_SCANNED });
        const names = [...new Set(jobs.flatMap((j) => (j.scheduleName ? [j.scheduleName] : [])))].sort();
        const items = [];
        for (const schedule of names) {
          const report = await readScheduleDrift(
            {
              list: async () => jobs,
              ...(backend.jobs.scheduleBaseline
                ? {
                    scheduleBaseline: (s: string) =>
                      backend.jobs.scheduleBaseline?.(s) ?? Promise.resolve(undefined),
                  }
                : {}),
              scheduleExists: async () => true,
            },
            schedule,
          ).catch((error: unknown) => {
            // A schedule none of whose runs finished yet has no chart, not an error for the page.
            if (error instanceof LabelerError && error.code === CODE.schedule.noFinishedRun) return undefined;
            throw error;
          });
          if (report) items.push(report);
        }
        return send(res, 200, { threshold: DRIFT.threshold, items });
      }
      case 'GET /api/jobs/:id': {
        const job = await backend.jobs.get(jobId);
        if (!job) throw new LabelerError(CODE.job.notFound, `no job ${jobId}`);
        return send(res, 200, jobView(job));
      }
      case 'GET /api/jobs/:id/failures': {
        const items = [];
        for await (const failure of backend.jobs.failures(jobId)) items.push(failure);
        return send(res, 200, { items });
      }
      case 'GET /api/jobs/:id/results': {
        const items = [];
        for await (const result of backend.jobs.results(jobId)) items.push(printedResult(result));
        return send(res, 200, { items });
      }
      case 'GET /api/evaluate':
        return send(res, 200, await evaluation(q.get('job') ?? undefined, q.get('prefix') ?? undefined));
      case 'GET /api/compare':
        return send(res, 200, await comparison(q.get('job') ?? undefined, q.get('prefix') ?? undefined));
      default:
        return send(res, 404, { error: { code: CODE.http.notFound, message: `${req.method} ${path}` } });
    }
  }

  /** `labeler evaluate` of a job or a prefix against the page's truth, with the images behind each cell. */
  async function evaluation(jobId: string | undefined, prefix: string | undefined) {
    if (!backend.truth)
      throw new LabelerError(
        CODE.ui.noTruth,
        'no truth is attached: start the page with "labeler ui --truth <csv|stack>"',
      );
    if ((jobId === undefined) === (prefix === undefined))
      throw new LabelerError(CODE.ui.badRequest, 'give exactly one of the parameters "job" and "prefix"');
    const evaluator = new Evaluator(backend.labels, new TruthSet(await backend.truth.read()));
    if (jobId !== undefined) {
      if (!(await backend.jobs.get(jobId))) throw new LabelerError(CODE.job.notFound, `no job ${jobId}`);
      for await (const result of backend.jobs.results(jobId)) evaluator.add(resultFromStore(result));
    } else {
      let cursor: string | undefined;
      do {
        const page = await backend.listKeys(prefix as string, MAX_LIMIT, cursor);
        const found = await Promise.all(
          page.items.map((key) => backend.results.getByImage(backend.bucket, key)),
        );
        page.items.forEach((key, i) => {
          const mine = found[i]?.find(
            (r) => r.model.id === backend.model.id && r.model.version === backend.model.version,
          );
          if (mine) evaluator.add(resultFromStore(mine));
          else evaluator.addMissing({ bucket: backend.bucket, key });
        });
        cursor = page.cursor;
      } while (cursor);
    }
    return evaluator.report({ cellImages: true, thresholds: CURVE_THRESHOLDS });
  }

  /**
   * `labeler compare` of the page's two models over a job's images or a prefix, with the page's
   * truth when attached; each listed image comes with a signed URL to show it.
   */
  async function comparison(jobId: string | undefined, prefix: string | undefined) {
    const models = backend.compare;
    if (!models)
      throw new LabelerError(
        CODE.ui.noCompare,
        'no models to compare: start the page with "labeler ui --compare <A>,<B>"',
      );
    if ((jobId === undefined) === (prefix === undefined))
      throw new LabelerError(CODE.ui.badRequest, 'give exactly one of the parameters "job" and "prefix"');
    const [a, b] = models;
    const truth = backend.truth ? new TruthSet(await backend.truth.read()) : undefined;
    const comparer = new Comparer(a, b, truth);
    const same = (r: { model: ModelRef }, m: ModelRef) =>
      r.model.id === m.id && r.model.version === m.version;
    const addImages = async (images: ReadonlyArray<{ bucket: string; key: string }>) => {
      const found = await Promise.all(images.map((i) => backend.results.getByImage(i.bucket, i.key)));
      for (const results of found) {
        const ra = results.find((r) => same(r, a.ref));
        const rb = results.find((r) => same(r, b.ref));
        comparer.add(ra && resultFromStore(ra), rb && resultFromStore(rb));
      }
    };
    if (jobId !== undefined) {
      if (!(await backend.jobs.get(jobId))) throw new LabelerError(CODE.job.notFound, `no job ${jobId}`);
      let images: Array<{ bucket: string; key: string }> = [];
      for await (const result of backend.jobs.results(jobId)) {
        images.push({ bucket: result.bucket, key: result.key });
        if (images.length === MAX_LIMIT) {
          await addImages(images);
          images = [];
        }
      }
      await addImages(images);
    } else {
      let cursor: string | undefined;
      do {
        const page = await backend.listKeys(prefix as string, MAX_LIMIT, cursor);
        await addImages(page.items.map((key) => ({ bucket: backend.bucket, key })));
        cursor = page.cursor;
      } while (cursor);
    }
    const report = comparer.report();
    const shown = [
      ...report.changed,
      ...report.threshold.newlyUnder,
      ...(report.truth ? [...report.truth.fixed, ...report.truth.broken] : []),
    ];
    const urls: Record<string, string> = {};
    for (const { image } of shown) {
      if (urls[image.key] === undefined)
        urls[image.key] = await backend.signedUrl(image.bucket ?? backend.bucket, image.key);
    }
    return { ...report, urls };
  }

  async function image(key: string) {
    const results = await backend.results.getByImage(backend.bucket, key);
    const mine = results.find(
      (r) => r.model.id === backend.model.id && r.model.version === backend.model.version,
    );
    return {
      bucket: backend.bucket,
      key,
      url: await backend.signedUrl(backend.bucket, key),
      ...(mine ? { result: printedResult(mine) } : {}),
      others: results.filter((r) => r !== mine).map(printedResult),
    };
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(listenError(error, options.port ?? 0)));
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${origin}/`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A port the page cannot have, in one coded line rather than a stack trace. */
function listenError(error: NodeJS.ErrnoException, port: number): Error {
  if (error.code === 'EADDRINUSE')
    return new LabelerError(
      CODE.ui.portInUse,
      `port ${port} on 127.0.0.1 is in use; choose another --port, or leave it out for a free one`,
      { cause: error },
    );
  if (error.code === 'EACCES' || error.code === 'EPERM')
    return new LabelerError(
      CODE.ui.portNotAllowed,
      `this user may not listen on port ${port} (${error.code}); choose a port above 1023`,
      { cause: error },
    );
  return error;
}

/** Every route the API answers, as "METHOD path": a known path with another method is 405. */
const ROUTES = [
  'GET /api/config',
  'GET /api/labels',
  'GET /api/images',
  'GET /api/image',
  'GET /api/jobs',
  'POST /api/jobs',
  'GET /api/estimate',
  'GET /api/drift',
  'GET /api/jobs/:id',
  'GET /api/jobs/:id/failures',
  'GET /api/jobs/:id/results',
  'GET /api/evaluate',
  'GET /api/compare',
] as const;

/** Whether an Origin header names this server (its own page). */
function sameOrigin(origin: string, port: string): boolean {
  return origin === `http://127.0.0.1:${port}` || origin === `http://localhost:${port}`;
}

/** A percent-encoded path segment; malformed encoding is the caller's mistake (400), not a 500. */
function decodedSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new LabelerError(CODE.ui.badRequest, 'the path is not valid percent-encoding');
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/**
 * Typed errors keep their code; the caller's mistakes are 4xx with their message. A 5xx
 * body says what happened in fixed words, never an exception's message (as the query
 * API); the details go to the server's stderr.
 */
function sendError(res: ServerResponse, error: unknown): void {
  if (res.headersSent) res.destroy();
  else if (error instanceof SyntaxError)
    send(res, 400, { error: { code: CODE.http.badRequest, message: 'the body is not JSON' } });
  else if (error instanceof LabelerError && httpStatusOf(error.code) < 500)
    send(res, httpStatusOf(error.code), { error: { code: error.code, message: error.message } });
  else {
    const code = error instanceof LabelerError ? error.code : CODE.internal.unexpected;
    process.stderr.write(`results page: ${code}: ${errorMessage(error)}\n`);
    // A store failure a retry may cure: 503, as the query API answers it.
    if (httpStatusOf(code) === 503)
      send(res, 503, { error: { code, message: 'the stack is unavailable; retry later' } });
    else
      send(res, 500, {
        error: { code: CODE.internal.unexpected, message: 'the request failed on the server' },
      });
  }
}

function forbidden(what: string) {
  return {
    code: CODE.http.forbidden,
    message: `unexpected ${what}: only the page served here may call this API`,
  };
}

function required(q: URLSearchParams, name: string): string {
  const value = q.get(name);
  if (!value) throw new LabelerError(CODE.ui.badRequest, `the parameter "${name}" is required`);
  return value;
}

function score(value: string | null): number {
  const n = value === null || value === '' ? 0 : Number(value);
  if (!(n >= 0 && n <= 1))
    throw new LabelerError(CODE.ui.badRequest, `minScore must be between 0 and 1, got ${value}`);
  return n;
}

function limit(value: string | null): number {
  const n = value === null || value === '' ? 24 : Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT)
    throw new LabelerError(
      CODE.ui.badRequest,
      `limit must be an integer from 1 to ${MAX_LIMIT}, got ${value}`,
    );
  return n;
}

/** The job form's sample, "50" or "5%" as `jobs start --sample` takes it; empty: the whole prefix. */
function sampleOf(value: unknown): { sample: SampleSpec } | undefined {
  if (value === undefined || value === null || String(value).trim() === '') return undefined;
  return { sample: parseSample(String(value)) };
}

function oneOf<const T extends string>(value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined || value === null || value === '') return fallback;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new LabelerError(
    CODE.ui.badRequest,
    `expected one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`,
  );
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) throw new LabelerError(CODE.ui.badRequest, 'the request body is over 64 KiB');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
