import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AwsCredentialIdentity } from '@aws-sdk/types';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/transport';
import { SignatureV4 } from '@smithy/signature-v4';
import { QUERY_API_SERVICE } from '../shared/aws/query-api-client.ts';
import { errorMessage } from '../shared/errors.ts';
import { answerQuery, type QueryDefaults } from '../shared/labeling/query-api.ts';
import type { ResultsStore } from '../shared/labeling/results.ts';

/** API Gateway refuses a request signed this long before or after its own clock. */
const MAX_CLOCK_SKEW_MS = 5 * 60_000;

export interface QueryApiServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * The query API as API Gateway serves it with IAM auth, on loopback: each request's SigV4
 * signature is recomputed with the SDK's signer from the stack's one set of credentials
 * and compared; an unsigned or mis-signed request gets API Gateway's 403. A request that
 * passes goes to the query function's own code (answerQuery on the DynamoDB store).
 */
export async function startQueryApiServer(options: {
  store: ResultsStore;
  defaults: QueryDefaults;
  region: string;
  credentials: AwsCredentialIdentity;
}): Promise<QueryApiServer> {
  const signer = new SignatureV4({
    service: QUERY_API_SERVICE,
    region: options.region,
    credentials: options.credentials,
    sha256: Sha256,
    // Only what the caller signed: a client that sent no payload hash header signed none.
    applyChecksum: false,
  });
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      options.defaults.log?.error('query API server failed', { error: errorMessage(error) });
      if (!res.headersSent) send(res, 500, { message: 'Internal Server Error' });
      else res.destroy();
    });
  });
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const refusal = await verify(req, url, signer, options);
    if (refusal) {
      send(res, 403, { message: refusal });
      return;
    }
    // As API Gateway hands it to the function: the raw path, the decoded parameters
    // (a repeated one joined with commas).
    const query: Record<string, string> = {};
    for (const [name, value] of url.searchParams) {
      query[name] = query[name] === undefined ? value : `${query[name]},${value}`;
    }
    const response = await answerQuery(
      { method: req.method ?? 'GET', path: url.pathname, query, rawQuery: url.search.slice(1) },
      options.store,
      options.defaults,
    );
    send(res, response.status, response.body);
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;

/** Why the request is refused, in API Gateway's words; undefined when its signature is ours. */
async function verify(
  req: IncomingMessage,
  url: URL,
  signer: SignatureV4,
  options: { region: string; credentials: AwsCredentialIdentity },
): Promise<string | undefined> {
  const authorization = req.headers.authorization;
  if (!authorization) return 'Missing Authentication Token';
  const parts = AUTHORIZATION.exec(authorization);
  const amzDate = req.headers['x-amz-date'];
  if (!parts || typeof amzDate !== 'string') return 'Authorization header requires a valid SigV4 signature';
  const [, accessKeyId, , region, service, signedList, signature] = parts as unknown as string[];
  if (accessKeyId !== options.credentials.accessKeyId) {
    return 'The security token included in the request is invalid.';
  }
  if (region !== options.region || service !== QUERY_API_SERVICE) {
    return `Credential should be scoped to a valid region and service: ${options.region}/${QUERY_API_SERVICE}`;
  }
  const signingDate = parseAmzDate(amzDate);
  if (!signingDate) return 'Date must be in ISO-8601 basic format';
  if (Math.abs(Date.now() - signingDate.getTime()) > MAX_CLOCK_SKEW_MS) return 'Signature expired';

  const signed = new Set(signedList?.split(';'));
  if (!signed.has('host')) return "'Host' must be a signed header";
  const headers: Record<string, string> = {};
  for (const name of signed) {
    const value = req.headers[name];
    if (value === undefined) return `signed header ${name} is missing`;
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string | string[]> = {};
  for (const [name, value] of url.searchParams) {
    const had = query[name];
    query[name] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
  }
  const expected = await signer.sign(
    new HttpRequest({
      method: req.method ?? 'GET',
      protocol: 'http:',
      hostname: '127.0.0.1',
      path: url.pathname,
      query,
      headers,
    }),
    { signingDate, signableHeaders: signed },
  );
  const recomputed = /Signature=([0-9a-f]{64})$/.exec(String(expected.headers.authorization))?.[1] ?? '';
  const same =
    recomputed.length === signature?.length &&
    timingSafeEqual(Buffer.from(recomputed), Buffer.from(signature));
  return same
    ? undefined
    : 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.';
}

/** `20261128T043000Z` → the date; undefined when it is not one. */
function parseAmzDate(text: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return undefined;
  const date = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
