import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  /** The path decoded: `<bucket>/<key>` for path-style S3 requests. */
  readonly path: string;
  readonly query: URLSearchParams;
}

/**
 * A loopback HTTP proxy in front of the S3 emulator that records every request, so a
 * test counts what a client really sent (PUTs, parts, HEADs). It can hold PutObject
 * requests after a number of them unanswered, to stop an upload at a known point.
 */
export class CountingProxy {
  readonly requests: SeenRequest[] = [];
  readonly #server: Server;
  readonly #upstream: URL;
  readonly #held: IncomingMessage[] = [];
  #holdPutsAfter: number | undefined;
  #puts = 0;

  private constructor(upstream: string) {
    this.#upstream = new URL(upstream);
    this.#server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://proxy');
      const seen = {
        method: req.method ?? '',
        path: decodeURIComponent(url.pathname.slice(1)),
        query: url.searchParams,
      };
      this.requests.push(seen);
      if (isPutObject(seen) && this.#holdPutsAfter !== undefined && ++this.#puts > this.#holdPutsAfter) {
        this.#held.push(req);
        req.resume();
        return;
      }
      const forward = request(
        {
          host: this.#upstream.hostname,
          port: this.#upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => res.destroy());
      req.pipe(forward);
    });
  }

  static async start(upstream: string): Promise<CountingProxy> {
    const proxy = new CountingProxy(upstream);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** From now on, PutObject requests after the next `count` are held unanswered. */
  holdPutsAfter(count: number): void {
    this.#holdPutsAfter = count;
    this.#puts = 0;
  }

  /** Answers nothing held: drops those connections, and forwards from now on. */
  release(): void {
    this.#holdPutsAfter = undefined;
    for (const req of this.#held.splice(0)) req.socket.destroy();
  }

  get heldCount(): number {
    return this.#held.length;
  }

  /** Whole-object PUTs (not parts, not copies) per object path `<bucket>/<key>`. */
  putObjects(pathPrefix: string): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of this.requests) {
      if (isPutObject(r) && r.path.startsWith(pathPrefix)) counts.set(r.path, (counts.get(r.path) ?? 0) + 1);
    }
    return counts;
  }

  count(predicate: (r: SeenRequest) => boolean): number {
    return this.requests.filter(predicate).length;
  }

  async close(): Promise<void> {
    this.release();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function isPutObject(r: SeenRequest): boolean {
  return r.method === 'PUT' && !r.query.has('partNumber') && r.path.includes('/');
}
