import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../shared/paths.ts';

export const BENCH_DIR = join(PACKAGE_ROOT, 'bench');
export const CACHE_DIR = join(BENCH_DIR, '.cache');
/**
 * Debian's interpreter: the one with python3-torch and python3-torchvision. BENCH_PYTHON names
 * another one (a virtual environment with torch, or one without it to test the bench's checks).
 */
export const SYSTEM_PYTHON = process.env.BENCH_PYTHON || '/usr/bin/python3';

/** Every process that may load onnxruntime gets telemetry off. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ORT_DISABLE_TELEMETRY: '1', ...extra };
}

export interface ChildOutcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly wallMs: number;
  readonly timedOut: boolean;
}

export interface ChildOptions {
  readonly timeoutMs: number;
  readonly env?: Record<string, string>;
  readonly cwd?: string;
  /** Echo the child's stderr lines to ours, indented, as they come. */
  readonly echoStderr?: boolean;
}

/** Process groups of the children now running, so a time-out or Ctrl-C ends their own children too. */
const running = new Set<number>();
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
let handlersInstalled = false;
function installSignalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const pid of running) killGroup(pid);
      process.exit(130);
    });
  }
}

/** Runs a command to completion (or kills it at the timeout); never throws for a non-zero exit. */
export function runChild(
  command: string,
  args: readonly string[],
  options: ChildOptions,
): Promise<ChildOutcome> {
  installSignalHandlers();
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, {
      cwd: options.cwd ?? PACKAGE_ROOT,
      env: childEnv(options.env),
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: emulators or workers it starts go down with it.
      detached: true,
    });
    const pid = child.pid;
    if (pid !== undefined) running.add(pid);
    let stdout = '';
    let stderr = '';
    let pendingLine = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (options.echoStderr) {
        pendingLine += d;
        const lines = pendingLine.split('\n');
        pendingLine = lines.pop() ?? '';
        for (const line of lines) process.stderr.write(`    | ${line}\n`);
      }
    });
    const timer = setTimeout(() => {
      timedOut = true;
      if (pid !== undefined) killGroup(pid);
      else child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      if (pid !== undefined) running.delete(pid);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (pid !== undefined) {
        running.delete(pid);
        // Anything the child left running in its group (a stray emulator) ends here too.
        killGroup(pid);
      }
      if (options.echoStderr && pendingLine) process.stderr.write(`    | ${pendingLine}\n`);
      resolve({ code, signal, stdout, stderr, wallMs: performance.now() - started, timedOut });
    });
  });
}

export class ChildFailed extends Error {
  constructor(what: string, outcome: ChildOutcome) {
    const why = outcome.timedOut
      ? `timed out after ${(outcome.wallMs / 1000).toFixed(1)} s`
      : `exited with ${outcome.code ?? outcome.signal}`;
    super(`${what} ${why}: ${gist(outcome.stderr || outcome.stdout)}`);
    this.name = 'ChildFailed';
  }
}

export function tail(text: string, chars: number): string {
  const t = text.trim();
  return t.length <= chars ? t : `…${t.slice(t.length - chars)}`;
}

/** The lines of an error output that say what went wrong, on one line, for reports. */
export function gist(text: string, chars = 300): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('at ') && !/^Node\.js v\d/.test(l) && !/^[\^~]+$/.test(l));
  const interesting = lines.filter((l) => /error|fail|invalid|cannot|not found|unknown|missing/i.test(l));
  const chosen = (interesting.length > 0 ? interesting : lines).slice(0, 3).join(' / ');
  return chosen.length <= chars ? chosen : `${chosen.slice(0, chars)}…`;
}

const RESULT_PREFIX = 'RESULT ';

/** The JSON a bench worker printed last on stdout as `RESULT {...}`. */
export function parseResult<T>(what: string, outcome: ChildOutcome): T {
  const line = outcome.stdout
    .split('\n')
    .reverse()
    .find((l) => l.startsWith(RESULT_PREFIX));
  if (outcome.code !== 0 || line === undefined) throw new ChildFailed(what, outcome);
  return JSON.parse(line.slice(RESULT_PREFIX.length)) as T;
}

export interface NodeWorkerOptions {
  readonly timeoutMs: number;
  readonly env?: Record<string, string>;
  /** Pin the process to these CPUs with taskset (simulates a smaller machine). */
  readonly cpus?: string;
}

/** Runs bench/workers/<name>.ts (or any .ts path) in a fresh Node process and returns its RESULT. */
export async function runNodeWorker<T>(
  script: string,
  args: unknown,
  options: NodeWorkerOptions,
): Promise<T> {
  const file = script.endsWith('.ts') ? script : join(BENCH_DIR, 'workers', `${script}.ts`);
  const nodeArgs = ['--import', 'tsx', file, JSON.stringify(args)];
  const outcome = options.cpus
    ? await runChild('taskset', ['-c', options.cpus, process.execPath, ...nodeArgs], options)
    : await runChild(process.execPath, nodeArgs, options);
  return parseResult<T>(script, outcome);
}

/** Worker side: parses argv[2] as JSON, runs `main` and prints its result as `RESULT {...}`. */
export async function workerMain<A, R>(main: (args: A) => Promise<R>): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as A;
  const result = await main(args);
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

/** The last JSON line a Python helper printed on stdout. */
export function parseJsonLine<T>(stdout: string): T {
  const line = stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.trim().startsWith('{'));
  if (line === undefined) throw new Error(`no JSON line in: ${tail(stdout, 300)}`);
  return JSON.parse(line) as T;
}

export function parseExportOutput(stdout: string) {
  return parseJsonLine<{ torch: string; torchvision: string; seconds: number }>(stdout);
}
