import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';

/**
 * onnxruntime-node runs `session.run` synchronously on the calling thread. On the main
 * thread that stalls the event loop for the whole inference, so sharp cannot start or
 * finish decoding the next batch meanwhile. The session therefore lives in a worker
 * thread; the main thread only sends tensors and receives logits.
 *
 * The worker is plain JavaScript evaluated from a string (with `import()`, so it runs as
 * a CommonJS script or as a module alike), so it runs the same under tsx, in the esbuild
 * bundles of the container images and in tests.
 */
const WORKER_SOURCE = `
(async () => {
const { parentPort, workerData } = await import('node:worker_threads');
const loaded = await import(workerData.ortUrl);
const ort = loaded.InferenceSession ? loaded : loaded.default;
let session;
parentPort.on('message', async (msg) => {
  try {
    if (msg.type === 'init') {
      session = await ort.InferenceSession.create(msg.model, msg.options);
      parentPort.postMessage({ id: msg.id, ok: true, value: {
        inputNames: session.inputNames, outputNames: session.outputNames,
        inputMetadata: session.inputMetadata, outputMetadata: session.outputMetadata } });
    } else if (msg.type === 'run') {
      const out = await session.run({ [msg.input]: new ort.Tensor('float32', msg.data, msg.dims) }, [msg.output]);
      const tensor = out[msg.output];
      const data = tensor.data instanceof Float32Array ? tensor.data : null;
      parentPort.postMessage({ id: msg.id, ok: true, value: data }, data ? [data.buffer] : []);
    } else if (msg.type === 'release') {
      if (session) await session.release();
      parentPort.postMessage({ id: msg.id, ok: true, value: null });
    }
  } catch (error) {
    parentPort.postMessage({ id: msg.id, ok: false, error: String((error && error.message) || error) });
  }
});
parentPort.postMessage({ id: -1, ok: true, value: 'ready' });
})().catch((error) => { throw error; });
`;

export interface SessionMetadata {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly InferenceSession.ValueMetadata[];
  readonly outputMetadata: readonly InferenceSession.ValueMetadata[];
}

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

export class OnnxWorkerError extends Error {}

/** One ONNX session in its own thread. Requests are answered in order. */
export class OnnxSessionWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void }
  >();
  #nextId = 0;
  #dead: Error | undefined;

  private constructor() {
    const ortUrl = pathToFileURL(createRequire(import.meta.url).resolve('onnxruntime-node')).href;
    this.#worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ortUrl } });
    this.#worker.unref();
    this.#worker.on('message', (reply: Reply) => {
      const waiter = this.#pending.get(reply.id);
      if (!waiter) return;
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) this.#worker.unref();
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(new OnnxWorkerError(reply.error));
    });
    const fail = (error: Error) => {
      this.#dead = error;
      for (const waiter of this.#pending.values()) waiter.reject(error);
      this.#pending.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new OnnxWorkerError(`the inference thread exited (${code})`)));
  }

  /** Starts a thread and creates the session there; the thread is gone again if that fails. */
  static async start(
    model: Uint8Array,
    options: InferenceSession.SessionOptions,
  ): Promise<{ worker: OnnxSessionWorker; metadata: SessionMetadata }> {
    const worker = new OnnxSessionWorker();
    try {
      const metadata = (await worker.#request({ type: 'init', model, options })) as SessionMetadata;
      return { worker, metadata };
    } catch (error) {
      await worker.terminate();
      throw error;
    }
  }

  /** Runs the model on one float32 tensor (copied to the thread) and returns the output's data. */
  async run(
    input: string,
    output: string,
    data: Float32Array,
    dims: readonly number[],
  ): Promise<Float32Array | null> {
    return (await this.#request({ type: 'run', input, output, data, dims })) as Float32Array | null;
  }

  async release(): Promise<void> {
    if (!this.#dead) await this.#request({ type: 'release' }).catch(() => undefined);
    await this.terminate();
  }

  async terminate(): Promise<void> {
    this.#dead ??= new OnnxWorkerError('the inference thread was stopped');
    await this.#worker.terminate();
  }

  #request(message: Record<string, unknown>): Promise<unknown> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.ref();
      this.#worker.postMessage({ ...message, id });
    });
  }
}
