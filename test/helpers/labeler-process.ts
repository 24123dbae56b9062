import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../shared/paths.ts';
import { waitFor } from './wait.ts';

/** A long-running `labeler` command (local up, local run) in a child process, as a user starts it. */
export class LabelerProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  /** @param options.ownProcessGroup as a shell starts a foreground command, for `pressCtrlC` */
  constructor(args: string[], options: { ownProcessGroup?: boolean } = {}) {
    this.child = spawn(process.execPath, [join(PACKAGE_ROOT, 'bin', 'labeler.mjs'), ...args], {
      cwd: PACKAGE_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.ownProcessGroup ?? false,
    });
    this.child.stdout?.on('data', (d: Buffer) => {
      this.stdout += d.toString();
    });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
  }

  get output(): string {
    return `${this.stdout}\n${this.stderr}`;
  }

  /** Waits until stdout or stderr matches, failing early (with the output) if the process exits. */
  async waitForOutput(pattern: RegExp, timeoutMs = 120_000): Promise<RegExpMatchArray> {
    return waitFor(
      `${pattern} in the output of labeler ${this.child.spawnargs.slice(2).join(' ')}`,
      () => {
        const match = this.output.match(pattern);
        if (match) return match;
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          throw new Error(
            `labeler exited (${this.child.exitCode ?? this.child.signalCode}) first:\n${this.output}`,
          );
        }
        return undefined;
      },
      timeoutMs,
    );
  }

  /** What a terminal's Ctrl-C does: SIGINT to every process of the foreground process group. */
  pressCtrlC(): void {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid) {
      process.kill(-this.child.pid, 'SIGINT');
    }
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

export interface EndpointsFile {
  region: string;
  endpoints: { s3: string; sqs: string; dynamodb: string };
  pid: number;
  dynamoDbPid: number;
}

export async function readEndpointsFile(dataDir: string): Promise<EndpointsFile> {
  return JSON.parse(await readFile(join(dataDir, 'endpoints.json'), 'utf8')) as EndpointsFile;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pids of a process's direct children named `name` (Linux /proc). */
export async function childPids(parent: number, name: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const match = stat.match(/^\d+ \((.*)\) \S+ (\d+)/);
    if (match?.[1] === name && Number(match[2]) === parent) out.push(Number(entry));
  }
  return out;
}

/** Waits until `<dataDir>/endpoints.json` names this `local up` process. */
export async function waitForEndpoints(dataDir: string, up: LabelerProcess): Promise<EndpointsFile> {
  return waitFor(
    `endpoints.json of pid ${up.child.pid}`,
    async () => {
      const file = await readEndpointsFile(dataDir).catch(() => undefined);
      if (file?.pid === up.child.pid) return file;
      if (up.child.exitCode !== null) throw new Error(`local up exited first:\n${up.output}`);
      return undefined;
    },
    120_000,
  );
}
