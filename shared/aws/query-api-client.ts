import type { AwsCredentialIdentity } from '@aws-sdk/types';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/transport';
import { SignatureV4 } from '@smithy/signature-v4';
import { CODE, type ErrorCode, isErrorCode, queryApiHttpCode } from '../error-codes.ts';
import { errorMessage, LabelerError } from '../errors.ts';
import type { ImageResult, LabelHit, Page, ResultsStore } from '../labeling/results.ts';

/** The read side of the results store: what the query API answers. */
export type ResultsReader = Pick<ResultsStore, 'getByImage' | 'queryByLabel'>;

/** The service name API Gateway checks IAM-signed requests against. */
export const QUERY_API_SERVICE = 'execute-api';

/**
 * A query API answer other than 200. `code` is the API's own problem code where it sent
 * one (`query/bad-cursor`, `results/not-found`, `aws/throttled`, ...); otherwise, for what
 * API Gateway answers itself, one of `query-api/forbidden` (403: unsigned, mis-signed or
 * not allowed), `query-api/throttled` (429), `query-api/unavailable` (5xx),
 * `http/not-found` (404), `query-api/http-<status>`. `query-api/unreachable` and
 * `query-api/timeout` when no answer came.
 */
export class QueryApiError extends LabelerError {
  readonly status: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    status: number | undefined,
    options: { cause?: unknown } = {},
  ) {
    super(code, message, { ...options, permanent: status !== undefined && status < 500 && status !== 429 });
    this.status = status;
  }
}

export interface QueryApiClientOptions {
  /** The API's base URL (API Gateway's stage URL, or the local stack's loopback server). */
  readonly url: string;
  readonly region: string;
  readonly credentials: () => Promise<AwsCredentialIdentity>;
  /** Tries per request when the API answers 503 or 429. @default 4 */
  readonly attempts?: number;
  /** The first retry's delay; each later one doubles it, with jitter. @default 200 */
  readonly baseDelayMs?: number;
  /** @default 30000 */
  readonly timeoutMs?: number;
}

/**
 * The query API over HTTP, every request signed with SigV4 by the SDK's own signer, as
 * API Gateway's IAM auth requires. Implements the read side of ResultsStore, so code that
 * reads results (the CLI, the UI) reads them the same way from any stack.
 */
export class QueryApiClient implements ResultsReader {
  readonly #base: URL;
  readonly #signer: SignatureV4;
  readonly #attempts: number;
  readonly #baseDelayMs: number;
  readonly #timeoutMs: number;

  constructor(options: QueryApiClientOptions) {
    this.#base = new URL(options.url);
    this.#signer = new SignatureV4({
      service: QUERY_API_SERVICE,
      region: options.region,
      credentials: options.credentials,
      sha256: Sha256,
    });
    this.#attempts = options.attempts ?? 4;
    this.#baseDelayMs = options.baseDelayMs ?? 200;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Every result stored for the object (one per model); none when it has none. */
  async getByImage(bucket: string, key: string): Promise<ImageResult[]> {
    // In the query string, not the path: a URL parser, SigV4's canonical path and API Gateway
    // each normalise `.`, `..` and empty path segments (even as %2E), so a key in the path
    // can reach another object's result (decision 0026).
    try {
      const body = (await this.get('/images', { key, bucket })) as { items?: ImageResult[] };
      return body.items ?? [];
    } catch (error) {
      if (error instanceof QueryApiError && error.code === CODE.results.notFound) return [];
      throw error;
    }
  }

  async queryByLabel(query: Parameters<ResultsStore['queryByLabel']>[0]): Promise<Page<LabelHit>> {
    const body = (await this.get(`/labels/${encodeURIComponent(query.label)}`, {
      minScore: String(query.minScore),
      limit: String(query.limit),
      model: query.model.id,
      modelVersion: query.model.version,
      ...(query.cursor ? { cursor: query.cursor } : {}),
    })) as Page<LabelHit>;
    return { items: body.items ?? [], ...(body.cursor ? { cursor: body.cursor } : {}) };
  }

  /** One signed GET; the parsed JSON body of a 200, or a QueryApiError. 503 and 429 are retried. */
  async get(path: string, query: Readonly<Record<string, string>> = {}): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#once(path, query);
      } catch (error) {
        const retryable = error instanceof QueryApiError && (error.status === 503 || error.status === 429);
        if (!retryable || attempt >= this.#attempts) throw error;
        const delay = this.#baseDelayMs * 2 ** (attempt - 1);
        await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * (delay / 2)));
      }
    }
  }

  async #once(path: string, query: Readonly<Record<string, string>>): Promise<unknown> {
    const fullPath = `${this.#base.pathname.replace(/\/$/, '')}${path}`;
    const request = new HttpRequest({
      method: 'GET',
      protocol: this.#base.protocol,
      hostname: this.#base.hostname,
      ...(this.#base.port ? { port: Number(this.#base.port) } : {}),
      path: fullPath,
      query: { ...query },
      headers: { host: this.#base.host, accept: 'application/json' },
    });
    const signed = await this.#signer.sign(request);
    // The query string as the signer canonicalized it (%20, not +), so both ends agree.
    const search = Object.entries(query)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .join('&');
    const url = `${this.#base.origin}${fullPath}${search ? `?${search}` : ''}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'GET',
        headers: signed.headers,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      const timedOut = (error as { name?: string }).name === 'TimeoutError';
      throw new QueryApiError(
        timedOut ? CODE.queryApi.timeout : CODE.queryApi.unreachable,
        `the query API at ${this.#base.origin} ${timedOut ? `did not answer within ${this.#timeoutMs} ms` : `cannot be reached: ${errorMessage((error as { cause?: unknown }).cause ?? error)}`}`,
        undefined,
        { cause: error },
      );
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (response.ok) {
      if (body === undefined) {
        throw new QueryApiError(CODE.queryApi.badResponse, 'the query API answered 200 without JSON', 200);
      }
      return body;
    }
    throw problemOf(response.status, body, text);
  }
}

/** The API's problem body (`{error: {code, message}}`), or API Gateway's own (`{message}`). */
function problemOf(status: number, body: unknown, text: string): QueryApiError {
  const problem = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (problem && typeof problem.code === 'string') {
    if (isErrorCode(problem.code))
      return new QueryApiError(problem.code, String(problem.message ?? ''), status);
    // A code this labeler does not declare (a newer stack's): kept in the words, not as the code.
    return new QueryApiError(
      queryApiHttpCode(status),
      `[${problem.code}] ${String(problem.message ?? '')}`,
      status,
    );
  }
  const said = (body as { message?: unknown } | undefined)?.message;
  const message = typeof said === 'string' ? said : text.slice(0, 200) || `HTTP ${status}`;
  if (status === 403) {
    return new QueryApiError(
      CODE.queryApi.forbidden,
      `the query API refused the request (403: ${message}); check the credentials and that they may call execute-api:Invoke on it`,
      status,
    );
  }
  if (status === 404)
    return new QueryApiError(CODE.http.notFound, `the query API has no such route (${message})`, status);
  if (status === 429)
    return new QueryApiError(
      CODE.queryApi.throttled,
      `the query API is throttling requests (${message})`,
      status,
    );
  if (status >= 500)
    return new QueryApiError(
      CODE.queryApi.unavailable,
      `the query API failed (HTTP ${status}: ${message})`,
      status,
    );
  return new QueryApiError(
    queryApiHttpCode(status),
    `the query API answered HTTP ${status}: ${message}`,
    status,
  );
}
