import { errorMessage, LabelerError } from '../errors.ts';
import type { ModelRef, ResultsStore } from './results.ts';

/** A transport-neutral request: the HTTP handler and tests build it from an API Gateway event. */
export interface QueryRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string | undefined>>;
}

export interface QueryResponse {
  readonly status: number;
  readonly body: unknown;
}

export interface QueryDefaults {
  readonly bucket: string;
  readonly model: ModelRef;
}

/**
 * The read API. GET /images/{key}?bucket=  → every result for the object;
 * GET /labels/{label}?minScore=&limit=&cursor=&model=&modelVersion=  → images whose label
 * scored >= minScore, best first, one page at a time (one DynamoDB Query, never a Scan).
 */
export async function answerQuery(
  request: QueryRequest,
  store: ResultsStore,
  defaults: QueryDefaults,
): Promise<QueryResponse> {
  if (request.method !== 'GET') return problem(405, 'http/method-not-allowed', 'only GET is supported');
  try {
    const image = request.path.match(/^\/images\/(.+)$/);
    if (image?.[1]) {
      const key = decodeURIComponent(image[1]);
      const results = await store.getByImage(request.query.bucket ?? defaults.bucket, key);
      if (results.length === 0) return problem(404, 'results/not-found', `no results for ${key}`);
      return { status: 200, body: { items: results } };
    }
    const label = request.path.match(/^\/labels\/([^/]+)$/);
    if (label?.[1]) {
      const minScore = number(request.query.minScore, 'minScore', 0, 0, 1);
      const limit = number(request.query.limit, 'limit', 100, 1, 1000);
      const model =
        request.query.model !== undefined
          ? { id: request.query.model, version: request.query.modelVersion ?? defaults.model.version }
          : defaults.model;
      const page = await store.queryByLabel({
        model,
        label: decodeURIComponent(label[1]),
        minScore,
        limit: Math.floor(limit),
        ...(request.query.cursor ? { cursor: request.query.cursor } : {}),
      });
      return { status: 200, body: page };
    }
    return problem(404, 'http/not-found', 'use GET /images/{key} or GET /labels/{label}');
  } catch (error) {
    if (error instanceof LabelerError && error.code === 'query/invalid')
      return problem(400, error.code, error.message);
    if (error instanceof RangeError) return problem(400, 'query/invalid', error.message);
    return problem(
      503,
      error instanceof LabelerError ? error.code : 'internal/unexpected',
      errorMessage(error),
    );
  }
}

function number(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new LabelerError('query/invalid', `${name} must be a number from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

function problem(status: number, code: string, message: string): QueryResponse {
  return { status, body: { error: { code, message } } };
}
