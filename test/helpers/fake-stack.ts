import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RESOURCE_NAMES } from '../../shared/settings.ts';

/**
 * A data dir whose endpoints.json points every client at one loopback HTTP server:
 * it answers SQS GetQueueUrl (so `openStack` succeeds) and hands every other request
 * to `answer`, which may leave it unanswered (a stack that hangs). For exit-status tests
 * that need a command to be mid-request, deterministically, without a real stack.
 */
export interface FakeStack {
  readonly dataDir: string;
  /** Every request received, SQS calls included, as "METHOD url". */
  readonly requests: string[];
  /** Resolves with the first request that is not an SQS call. */
  readonly firstRequest: Promise<IncomingMessage>;
  close(): Promise<void>;
}

export async function startFakeStack(
  answer: (req: IncomingMessage, res: ServerResponse) => void = () => undefined,
): Promise<FakeStack> {
  let seen: (req: IncomingMessage) => void = () => undefined;
  const firstRequest = new Promise<IncomingMessage>((resolve) => {
    seen = resolve;
  });
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const target = req.headers['x-amz-target'];
    if (typeof target === 'string' && target.startsWith('AmazonSQS.')) {
      let body = '';
      req.on('data', (d: Buffer) => {
        body += d.toString();
      });
      req.on('end', () => {
        const name = (JSON.parse(body || '{}') as { QueueName?: string }).QueueName ?? 'q';
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(JSON.stringify({ QueueUrl: `${url}/000000000000/${name}` }));
      });
      return;
    }
    seen(req);
    answer(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'labeler-fake-stack-'));
  await writeFile(
    join(dataDir, 'endpoints.json'),
    JSON.stringify({
      region: 'us-east-1',
      endpoints: { s3: url, sqs: url, dynamodb: url, queryApi: url },
      names: RESOURCE_NAMES,
      // This test process: alive for as long as the fake stack is.
      pid: process.pid,
    }),
  );
  return {
    dataDir,
    requests,
    firstRequest,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
