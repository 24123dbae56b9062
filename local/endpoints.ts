import { link, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { LOCAL_CREDENTIALS } from '../shared/aws/clients.ts';
import { CODE } from '../shared/error-codes.ts';
import { LabelerError } from '../shared/errors.ts';
import type { StackModels } from '../shared/labeling/stack-models.ts';

/** What `local up` writes to `<data dir>/endpoints.json` and `labeler query` reads back. */
export interface RunningStack {
  readonly region: string;
  readonly endpoints: {
    readonly s3: string;
    readonly sqs: string;
    readonly dynamodb: string;
    /** The query API served on loopback with SigV4 checks, when this `local up` serves it. */
    readonly queryApi?: string;
  };
  readonly names: Record<string, string>;
  /** Buckets besides the images bucket that this stack's jobs may label. */
  readonly readableBuckets?: readonly string[];
  /** The models the stack hosts, their queues and default (decision 0037); absent: written before. */
  readonly models?: StackModels;
  /** `cpu` when the stack runs the GPU worker (on the CPU provider: the machine has no GPU to use). */
  readonly gpuWorker?: 'cpu';
  /** The `local up` process. */
  readonly pid: number;
  readonly dynamoDbPid?: number;
}

export const endpointsFile = (dataDir: string) => join(dataDir, 'endpoints.json');
const lockFile = (dataDir: string) => join(dataDir, 'lock');

/** True while a process with this id exists (signal 0 probes without signalling). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface DataDirLock {
  release(): Promise<void>;
}

/**
 * Takes the data dir for this process: a lock file holding our pid, created exclusively.
 * A live holder means another `local up` owns the dir (its DynamoDB files, its endpoints.json);
 * a dead holder's lock (a killed `local up`) is taken over.
 */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const path = lockFile(dataDir);
  // Linked into place whole, so the lock never exists without its pid.
  const mine = `${path}.${process.pid}.tmp`;
  await writeFile(mine, `${process.pid}\n`);
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await link(mine, path);
        return {
          release: async () => {
            // Only our own lock: never one a later holder took over.
            if ((await readPid(path)) === process.pid) await rm(path, { force: true });
          },
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = await readPid(path);
      if (holder !== undefined && holder !== process.pid && processAlive(holder)) {
        throw new LabelerError(
          CODE.local.alreadyRunning,
          `a local stack (pid ${holder}) is already running with ${dataDir}; stop it (Ctrl-C) or use another --data-dir`,
        );
      }
      // A dead holder (a killed local up): take its lock over; `link` settles a race of two.
      await rm(path, { force: true });
    }
    throw new LabelerError(CODE.local.alreadyRunning, `could not take the lock ${path}`);
  } finally {
    await rm(mine, { force: true });
  }
}

async function readPid(path: string): Promise<number | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  const pid = Number(text?.trim());
  return text !== undefined && Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Written whole or not at all (a rename): a reader never sees a half-written file. */
export async function writeEndpoints(dataDir: string, stack: RunningStack): Promise<void> {
  const partial = `${endpointsFile(dataDir)}.${process.pid}.tmp`;
  await writeFile(partial, `${JSON.stringify(stack, null, 2)}\n`);
  await rename(partial, endpointsFile(dataDir));
}

/** Removes endpoints.json if it is still ours. */
export async function removeEndpoints(dataDir: string): Promise<void> {
  const current = await readEndpoints(dataDir);
  if (current === undefined || current.pid === process.pid) await rm(endpointsFile(dataDir), { force: true });
}

export async function readEndpoints(dataDir: string): Promise<RunningStack | undefined> {
  const text = await readFile(endpointsFile(dataDir), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as RunningStack;
  } catch {
    return undefined;
  }
}

/**
 * The `local up` stack serving `dataDir`. An endpoints.json left by a killed process
 * (its pid gone, or its DynamoDB endpoint refusing connections) is reported as
 * `local/not-running`, not as a client timeout later.
 */
export async function findRunningStack(dataDir: string): Promise<RunningStack> {
  const start = 'start one with "labeler local up"';
  const stack = await readEndpoints(dataDir);
  if (!stack?.endpoints?.dynamodb) {
    throw new LabelerError(CODE.local.notRunning, `no local stack found in ${dataDir}; ${start}`);
  }
  if (!processAlive(stack.pid)) {
    throw new LabelerError(
      CODE.local.notRunning,
      `the local stack in ${dataDir} is not running (its process ${stack.pid} has exited; ` +
        `${endpointsFile(dataDir)} is left over); ${start}`,
    );
  }
  if (!(await accepts(stack.endpoints.dynamodb))) {
    throw new LabelerError(
      CODE.local.notRunning,
      `the local stack in ${dataDir} does not answer: DynamoDB Local at ${stack.endpoints.dynamodb} ` +
        `refuses connections; ${start}`,
    );
  }
  return stack;
}

/** Whether something listens at the URL's host and port. */
function accepts(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(5000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The shell lines that point the AWS CLI or any SDK at the local stack. */
export function shellEnvironment(stack: Pick<RunningStack, 'region' | 'endpoints'>): string {
  return [
    `export AWS_ACCESS_KEY_ID=${LOCAL_CREDENTIALS.accessKeyId} AWS_SECRET_ACCESS_KEY=${LOCAL_CREDENTIALS.secretAccessKey}`,
    // AWS_DEFAULT_REGION for AWS CLI v1, which does not read AWS_REGION.
    `export AWS_REGION=${stack.region} AWS_DEFAULT_REGION=${stack.region}`,
    `export AWS_ENDPOINT_URL_S3=${stack.endpoints.s3} AWS_ENDPOINT_URL_SQS=${stack.endpoints.sqs} AWS_ENDPOINT_URL_DYNAMODB=${stack.endpoints.dynamodb}`,
  ].join('\n');
}
