import { CODE, type ErrorCode, httpStatusOf } from '../error-codes.ts';
import { errorMessage, LabelerError } from '../errors.ts';
import type { ModelRef, ResultsStore } from './results.ts';

/** A transport-neutral request: the HTTP handler and tests build it from an API Gateway event. */
export interface QueryRequest {
  readonly method: string;
  readonly path: string;
  /** The decoded parameters; ignored when `rawQuery` is given. */
  readonly query: Readonly<Record<string, string | undefined>>;
  /**
   * The query string as sent (API Gateway's `rawQueryString`): decoded here, strictly, so a
   * key reads back exactly as the client encoded it (`+` is a plus sign, never a space).
   */
  readonly rawQuery?: string;
}

export interface QueryResponse {
  readonly status: number;
  readonly body: unknown;
}

export interface QueryDefaults {
  readonly bucket: string;
  readonly model: ModelRef;
  /** Where server-side failures are logged in full; their response bodies never carry the details. */
  readonly log?: { error(message: string, extra?: Record<string, unknown>): void };
}

/**
 * The read API. GET /images?key=&bucket=  → every result for the object (the key in the
 * query string, where no client, proxy or signer normalises `.` and `..` segments, empty
 * segments or a trailing slash; decision 0026); GET /images/{key} reads the same for keys
 * without such segments, as older clients send it;
 * GET /labels/{label}?minScore=&limit=&cursor=&model=&modelVersion=  → images whose label
 * scored >= minScore, best first, one page at a time (one DynamoDB Query per shard of the
 * label's index key, merged by score; never a Scan).
 *
 * Status codes: 200; 400 `query/bad-request` (malformed path or parameter, a key or label
 * too long to be stored) and `query/bad-cursor`; 404 `results/not-found`, `http/not-found`;
 * 405 `http/method-not-allowed`; 503 `aws/throttled|unavailable|timeout` (retry);
 * 500 `internal/unexpected`. A 5xx body says what happened in fixed words, never an
 * exception's message.
 */
export async function answerQuery(
  request: QueryRequest,
  store: ResultsStore,
  defaults: QueryDefaults,
): Promise<QueryResponse> {
  if (request.method !== 'GET') return problem(CODE.http.methodNotAllowed, 'only GET is supported');
  try {
    const query = request.rawQuery === undefined ? request.query : parseQuery(request.rawQuery);
    const image = request.path.match(/^\/images(?:\/(.+))?$/);
    if (image) {
      const key = image[1] === undefined ? query.key : pathPart(image[1], 'the image key');
      if (key === undefined || key === '') {
        throw new LabelerError(CODE.query.badRequest, 'name the image: GET /images?key=<key>');
      }
      const results = await store.getByImage(query.bucket ?? defaults.bucket, key);
      if (results.length === 0)
        return problem(CODE.results.notFound, `no results for ${JSON.stringify(key)}`);
      return { status: 200, body: { items: results } };
    }
    const label = request.path.match(/^\/labels\/([^/]+)$/);
    if (label?.[1]) {
      const minScore = number(query.minScore, 'minScore', 0, 0, 1);
      const limit = number(query.limit, 'limit', 100, 1, 1000);
      const model =
        query.model !== undefined
          ? { id: query.model, version: query.modelVersion ?? defaults.model.version }
          : defaults.model;
      const page = await store.queryByLabel({
        model,
        label: pathPart(label[1], 'the label'),
        minScore,
        limit: Math.floor(limit),
        ...(query.cursor ? { cursor: query.cursor } : {}),
      });
      return { status: 200, body: page };
    }
    return problem(CODE.http.notFound, 'use GET /images?key=<key> or GET /labels/{label}');
  } catch (error) {
    const code = error instanceof LabelerError ? error.code : CODE.internal.unexpected;
    // The registry says whose the failure is: the caller's (4xx, with its message), a store a
    // retry may cure (503), or the server's (500, the details only logged).
    const status = httpStatusOf(code);
    if (status < 500) return problem(code, errorMessage(error));
    defaults.log?.error('query failed', { code, error: errorMessage(error), path: request.path });
    if (status === 503) return problem(code, 'the results store is unavailable; retry later');
    return problem(CODE.internal.unexpected, 'the query failed on the server');
  }
}

/**
 * `a=1&b=x%2By` → `{a: '1', b: 'x+y'}`: each name and value percent-decoded, `+` kept as
 * itself (SigV4 and this API's client encode a space as `%20`), a repeated name's values
 * joined with commas as API Gateway joins them.
 */
export function parseQuery(raw: string): Record<string, string> {
  const query = new Map<string, string>();
  for (const pair of raw.split('&')) {
    if (pair === '') continue;
    const at = pair.indexOf('=');
    const name = pathPart(at < 0 ? pair : pair.slice(0, at), 'a query parameter name');
    const value = at < 0 ? '' : pathPart(pair.slice(at + 1), `the ${name} parameter`);
    const had = query.get(name);
    query.set(name, had === undefined ? value : `${had},${value}`);
  }
  return Object.fromEntries(query);
}

function pathPart(encoded: string, what: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new LabelerError(CODE.query.badRequest, `${what} is not valid percent-encoding`);
  }
}

function number(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new LabelerError(
      CODE.query.badRequest,
      `${name} must be a number from ${min} to ${max}, got "${value}"`,
    );
  }
  return n;
}

/** An error body with the status error-codes.ts declares for `code`. */
function problem(code: ErrorCode, message: string): QueryResponse {
  return { status: httpStatusOf(code), body: { error: { code, message } } };
}
