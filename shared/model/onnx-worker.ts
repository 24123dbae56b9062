import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';

/**
 * onnxruntime-node runs `session.run` synchronously on the calling thread. On the main
 * thread that stalls the event loop for the whole inference, so sharp cannot start or
 * finish decoding the next batch meanwhile. The session therefore lives in a worker
 * thread; the main thread only sends tensors and receives logits. Tensors move by
 * transfer both ways (decision 0016): a structured clone of a 77 MB batch-128 input cost
 * more than the GPU's whole inference of it.
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
      // The input came transferred, not copied; it goes back the same way with the output,
      // so the sender can fill it again instead of allocating the next batch's tensor.
      const back = msg.data.buffer instanceof ArrayBuffer ? [msg.data.buffer] : [];
      let out;
      try {
        out = await session.run({ [msg.input]: new ort.Tensor('float32', msg.data, msg.dims) }, [msg.output]);
      } catch (error) {
        parentPort.postMessage({ id: msg.id, ok: false, error: String((error && error.message) || error),
          input: msg.data }, back);
        return;
      }
      const tensor = out[msg.output];
      const data = tensor.data instanceof Float32Array ? tensor.data : null;
      parentPort.postMessage({ id: msg.id, ok: true, value: data, input: msg.data },
        data ? [data.buffer, ...back] : back);
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

type Reply =
  | { id: number; ok: true; value: unknown; input?: Float32Array }
  | { id: number; ok: false; error: string; input?: Float32Array };

export class OnnxWorkerError extends Error {
  /** The input tensor of a failed run, handed back by the inference thread. */
  readonly input: Float32Array | undefined;

  constructor(message: string, input?: Float32Array) {
    super(message);
    this.input = input;
  }
}

export interface RunResult {
  readonly output: Float32Array | null;
  /** The input tensor, back from the inference thread (same bytes, a new view on its buffer). */
  readonly input: Float32Array | undefined;
}

/** One ONNX session in its own thread. Requests are answered in order. */
export class OnnxSessionWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<
    number,
    { resolve: (reply: Reply & { ok: true }) => void; reject: (error: Error) => void }
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
      if (reply.ok) waiter.resolve(reply);
      else waiter.reject(new OnnxWorkerError(reply.error, reply.input));
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
      const metadata = (await worker.#request({ type: 'init', model, options })).value as SessionMetadata;
      return { worker, metadata };
    } catch (error) {
      await worker.terminate();
      throw error;
    }
  }

  /**
   * Runs the model on one float32 tensor and returns the output's data. The tensor's
   * buffer is transferred to the thread, not copied: it is detached here (byteLength 0)
   * until it comes back in the result (or on the error, when the run fails). A buffer that
   * cannot move (a SharedArrayBuffer) is shared; one that is not exclusively the tensor's
   * would be detached with it, so callers pass tensors that own their buffer.
   */
  async run(input: string, output: string, data: Float32Array, dims: readonly number[]): Promise<RunResult> {
    const transfer = data.buffer instanceof ArrayBuffer ? [data.buffer] : [];
    const reply = await this.#request({ type: 'run', input, output, data, dims }, transfer);
    return { output: reply.value as Float32Array | null, input: reply.input };
  }

  async release(): Promise<void> {
    if (!this.#dead) await this.#request({ type: 'release' }).catch(() => undefined);
    await this.terminate();
  }

  async terminate(): Promise<void> {
    this.#dead ??= new OnnxWorkerError('the inference thread was stopped');
    await this.#worker.terminate();
  }

  #request(message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Reply & { ok: true }> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.ref();
      try {
        this.#worker.postMessage({ ...message, id }, transfer);
      } catch (error) {
        // A buffer that cannot move (Node's Buffer pool, say) is refused and nothing was sent:
        // send a copy instead, as before transfers.
        try {
          if (transfer.length === 0) throw error;
          this.#worker.postMessage({ ...message, id });
        } catch (cloneError) {
          this.#pending.delete(id);
          if (this.#pending.size === 0) this.#worker.unref();
          reject(cloneError);
        }
      }
    });
  }
}
