import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { Endpoints } from '../shared/aws/clients.ts';
import type { ConsumerContext } from '../shared/aws/sqs-batch-consumer.ts';
import type { WorkerConfig } from '../shared/config.ts';
import { CODE, type ErrorCode } from '../shared/error-codes.ts';
import { LabelerError } from '../shared/errors.ts';
import type { BatchReport, ClassifyLog } from '../shared/labeling/classify-records.ts';

/** Messages from the stack to an execution environment. */
export type ToEnvironment =
  | { type: 'init'; config: WorkerConfig; endpoints: Endpoints }
  | { type: 'invoke'; id: number; event: SQSEvent; remainingMs: number }
  | { type: 'shutdown' };

/** Messages from an execution environment to the stack. */
export type FromEnvironment =
  | { type: 'ready' }
  | { type: 'init-failed'; code: ErrorCode; message: string }
  | { type: 'result'; id: number; response: SQSBatchResponse; report?: BatchReport }
  | { type: 'failed'; id: number; message: string }
  | {
      type: 'log';
      level: keyof ClassifyLog;
      message: string;
      extra?: Record<string, unknown> | undefined;
    };

export interface ExecutionEnvironmentsOptions {
  readonly config: WorkerConfig;
  readonly endpoints: Endpoints;
  /** Environments at most, one per concurrent invocation. */
  readonly size: number;
  /** Environments started (and initialised) before `start` returns; the rest start on demand. @default size */
  readonly warm?: number;
  /** An invocation running longer is failed and its environment killed, as a Lambda timeout does. */
  readonly timeoutMs: number;
  readonly log: ClassifyLog;
  /** Called with each successful invocation's report and the event it answered. */
  readonly onReport: (report: BatchReport, event: SQSEvent) => void;
}

const ENTRY = fileURLToPath(new URL('./execution-environment.ts', import.meta.url));
// Absolute, so an environment starts wherever the CLI was run from.
const TSX = import.meta.resolve('tsx');
const SHUTDOWN_GRACE_MS = 5_000;

interface InFlight {
  readonly id: number;
  readonly event: SQSEvent;
  readonly resolve: (response: SQSBatchResponse) => void;
  readonly reject: (error: Error) => void;
}

class Environment {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  inFlight: InFlight | undefined;
  alive = true;
  initialized = false;
  timedOut = false;

  constructor(
    options: ExecutionEnvironmentsOptions,
    onExit: (env: Environment, midInvocation: boolean) => void,
  ) {
    this.child = fork(ENTRY, [], {
      execArgv: ['--import', TSX],
      // stdout belongs to the CLI's JSON Lines: anything an environment prints goes to stderr.
      stdio: ['ignore', 2, 'inherit', 'ipc'],
      env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
      // Out of the terminal's process group, so Ctrl-C reaches only the stack, which stops
      // its environments in order; an environment still exits when its parent's IPC closes.
      detached: true,
    });
    let settleReady: { resolve: () => void; reject: (error: Error) => void } | undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      settleReady = { resolve, reject };
    });
    // Awaited by whoever needs this environment; an environment nobody waits for may still die in init.
    this.ready.catch(() => {});
    this.exited = new Promise<void>((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.alive = false;
        const why = `execution environment ${this.child.pid} exited (${signal ?? `code ${code}`})`;
        settleReady?.reject(
          new LabelerError(CODE.internal.unexpected, `${why} during init`, { permanent: false }),
        );
        const midInvocation = this.inFlight !== undefined;
        this.inFlight?.reject(
          new Error(this.timedOut ? `${why}: the invocation timed out` : `${why} during the invocation`),
        );
        this.inFlight = undefined;
        onExit(this, midInvocation);
        resolve();
      });
    });
    this.child.on('message', (raw) => {
      const message = raw as FromEnvironment;
      if (message.type === 'ready') {
        this.initialized = true;
        settleReady?.resolve();
      } else if (message.type === 'init-failed')
        settleReady?.reject(new LabelerError(message.code, message.message));
      else if (message.type === 'log') options.log[message.level](message.message, message.extra);
      else if (message.type === 'result' || message.type === 'failed') {
        const call = this.inFlight;
        if (!call || call.id !== message.id) return;
        this.inFlight = undefined;
        if (message.type === 'failed') call.reject(new Error(message.message));
        else {
          try {
            if (message.report) options.onReport(message.report, call.event);
            call.resolve(message.response);
          } catch (error) {
            // As in-process: a listener that throws fails the invocation, not the stack.
            call.reject(error instanceof Error ? error : new Error(String(error)));
          }
        }
      }
    });
    // A send to an environment that just died fails here; its exit fails the invocation.
    this.child.on('error', () => {});
    this.child.send({
      type: 'init',
      config: options.config,
      endpoints: options.endpoints,
    } satisfies ToEnvironment);
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  invoke(id: number, event: SQSEvent, timeoutMs: number): Promise<SQSBatchResponse> {
    const remainingMs = timeoutMs;
    return new Promise<SQSBatchResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        // The handler may still be running: the environment goes, as Lambda resets a timed-out one.
        this.timedOut = true;
        this.child.kill('SIGKILL');
      }, timeoutMs);
      this.inFlight = {
        id,
        event,
        resolve: (response) => {
          clearTimeout(timer);
          resolve(response);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.child.send({ type: 'invoke', id, event, remainingMs } satisfies ToEnvironment);
    });
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child.send({ type: 'shutdown' } satisfies ToEnvironment);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), SHUTDOWN_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * Lambda's execution environments for the classify function, on one machine: each
 * invocation runs in a child process of its own (local/execution-environment.ts), so a
 * crashed or killed invocation takes down neither the emulators nor the other
 * invocations, and concurrent invocations use every core. Environments are created on
 * demand up to `size`, reused while warm, and replaced when they die; an environment
 * that dies mid-invocation fails that invocation as a whole, so its batch comes back
 * after the visibility timeout, as on Lambda.
 */
export class ExecutionEnvironments {
  readonly #o: ExecutionEnvironmentsOptions;
  readonly #all = new Set<Environment>();
  readonly #idle: Environment[] = [];
  readonly #waiting: Array<{ resolve: (env: Environment) => void; reject: (error: unknown) => void }> = [];
  #nextId = 1;
  #stopped = false;
  /** Environments that died (killed, crashed or timed out), not counting those stopped. */
  deaths = 0;
  /** Of those, the ones that died with an invocation in flight, failing it. */
  deathsMidInvocation = 0;

  private constructor(options: ExecutionEnvironmentsOptions) {
    this.#o = options;
  }

  /** Starts `warm` environments and waits for their init, so a bad model fails the stack's start. */
  static async start(options: ExecutionEnvironmentsOptions): Promise<ExecutionEnvironments> {
    const environments = new ExecutionEnvironments(options);
    const warm = Math.min(options.size, options.warm ?? options.size);
    const started = Array.from({ length: warm }, () => environments.#spawn());
    try {
      await Promise.all(started.map((env) => env.ready));
    } catch (error) {
      await environments.stop();
      throw error;
    }
    environments.#idle.push(...started);
    return environments;
  }

  /** The handler the event source mapping invokes. */
  readonly invoke = async (event: SQSEvent, context?: ConsumerContext): Promise<SQSBatchResponse> => {
    if (this.#stopped) throw new Error('the execution environments are stopped');
    const env = await this.#acquire();
    try {
      // The mapping's clock started at its call, so a cold start here uses some of it: stricter
      // than Lambda, whose init phase is not part of the invocation's timeout.
      const timeoutMs = context ? context.getRemainingTimeInMillis() : this.#o.timeoutMs;
      return await env.invoke(this.#nextId++, event, timeoutMs);
    } finally {
      this.#releaseEnv(env);
    }
  };

  /** Process ids of the live environments. */
  get pids(): number[] {
    return [...this.#all].filter((e) => e.alive).map((e) => e.pid);
  }

  /** Process ids of the environments running an invocation right now. */
  get busyPids(): number[] {
    return [...this.#all].filter((e) => e.alive && e.inFlight).map((e) => e.pid);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all([...this.#all].map((env) => env.stop()));
  }

  #spawn(): Environment {
    const env = new Environment(this.#o, (gone, midInvocation) => {
      this.#all.delete(gone);
      const at = this.#idle.indexOf(gone);
      if (at >= 0) this.#idle.splice(at, 1);
      if (this.#stopped) return;
      this.deaths++;
      if (midInvocation) this.deathsMidInvocation++;
      // A warm environment that died is replaced at once; one that never finished init is
      // not (it would fail the same way again), and the next invocation starts one cold.
      if (gone.initialized) this.#replace();
    });
    this.#all.add(env);
    return env;
  }

  #replace(): void {
    const env = this.#spawn();
    env.ready.then(
      () => this.#releaseEnv(env),
      (error: unknown) =>
        this.#o.log.error('a replacement execution environment failed to start', { error: String(error) }),
    );
  }

  async #acquire(): Promise<Environment> {
    const idle = this.#idle.pop();
    if (idle) return idle;
    if (this.#all.size < this.#o.size) {
      // A cold start: the replacement of a dead environment, or growth up to `size`.
      const env = this.#spawn();
      await env.ready;
      return env;
    }
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  #releaseEnv(env: Environment): void {
    if (!env.alive) {
      // Its place is free: a waiting invocation starts a fresh environment.
      const next = this.#waiting.shift();
      if (next) this.#acquire().then(next.resolve, next.reject);
      return;
    }
    const next = this.#waiting.shift();
    if (next) next.resolve(env);
    else this.#idle.push(env);
  }
}
