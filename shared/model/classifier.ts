import { availableParallelism } from 'node:os';
import type { InferenceSession } from 'onnxruntime-node';
import { CODE } from '../error-codes.ts';
import { errorMessage, ModelError } from '../errors.ts';
import { inputDims, type Manifest, type ModelBundle } from './manifest.ts';
import { OnnxSessionWorker, OnnxWorkerError, type SessionMetadata } from './onnx-worker.ts';

/**
 * Returned input buffers kept for reuse: enough for the batches a labeler keeps in flight
 * (one decoding, one in the model, per concurrent invocation), few enough to bound memory.
 */
const MAX_SPARE_INPUTS = 4;

export interface Label {
  readonly label: string;
  readonly score: number;
}

export interface ClassifierOptions {
  /** Tried in order; the CPU provider is always the last resort. @default ['cpu'] */
  readonly executionProviders?: readonly string[];
  /**
   * Threads for one inference. More than the cores halves throughput. With idle threads
   * not spinning, 1 and 2 threads are within run-to-run noise on 2 cores when decode
   * shares them (bench/RESULTS.md section 3), while inference alone is 1.8x faster with
   * 2 (section 1). @default the available cores
   */
  readonly intraOpThreads?: number;
  /**
   * Let idle inference threads spin. Spinning wins only when nothing else needs the
   * cores; in the pipeline, JPEG decoding shares them (bench/RESULTS.md). @default false
   */
  readonly spinThreads?: boolean;
  /**
   * Refuse to start on the CPU when a non-CPU provider was asked for and none of them
   * loads: a GPU worker silently on the CPU labels at a fraction of its speed on a GPU
   * instance's bill. Throws ModelError `model/provider-unavailable`. @default false
   */
  readonly requireProvider?: boolean;
}

export interface Logger {
  warn(message: string, extra?: Record<string, unknown>): void;
}

/** One ONNX session for one model; `classify` runs one batch of preprocessed images. */
export class Classifier {
  readonly manifest: Manifest;
  readonly labels: readonly string[];
  /** Floats per preprocessed image. */
  readonly imageLength: number;
  readonly executionProvider: string;
  readonly #session: OnnxSessionWorker;
  /** Input buffers back from the inference thread, for the next batches (see `inputBatch`). */
  readonly #spare: ArrayBuffer[] = [];
  /**
   * The batch size a graph exported with a fixed batch axis takes (some public exports
   * take exactly one image); undefined when the batch axis is dynamic.
   */
  readonly #fixedBatch: number | undefined;

  private constructor(
    bundle: ModelBundle,
    session: OnnxSessionWorker,
    executionProvider: string,
    fixedBatch: number | undefined,
  ) {
    this.#fixedBatch = fixedBatch;
    this.manifest = bundle.manifest;
    this.labels = bundle.labels;
    this.imageLength = 3 * bundle.manifest.input.width * bundle.manifest.input.height;
    this.executionProvider = executionProvider;
    this.#session = session;
  }

  static async create(
    bundle: ModelBundle,
    options: ClassifierOptions = {},
    log?: Logger,
  ): Promise<Classifier> {
    const base = sessionOptions(options);
    const wanted = (options.executionProviders ?? ['cpu']).filter((p) => p !== 'cpu');
    let started: { worker: OnnxSessionWorker; metadata: SessionMetadata } | undefined;
    let provider = 'cpu';
    const failures: string[] = [];
    for (const candidate of wanted) {
      try {
        started = await OnnxSessionWorker.start(bundle.modelBytes, {
          ...base,
          executionProviders: [candidate, 'cpu'],
        });
        provider = candidate;
        break;
      } catch (error) {
        failures.push(`${candidate}: ${errorMessage(error)}`);
        if (options.requireProvider) continue;
        log?.warn(`execution provider ${candidate} is unavailable; trying the next one`, {
          error: errorMessage(error),
        });
      }
    }
    if (!started && options.requireProvider && wanted.length > 0) {
      throw new ModelError(
        CODE.model.providerUnavailable,
        `execution provider ${wanted.join(', ')} could not load and CPU fallback is off (${failures.join('; ')})`,
      );
    }
    if (!started) {
      try {
        started = await OnnxSessionWorker.start(bundle.modelBytes, { ...base, executionProviders: ['cpu'] });
      } catch (cause) {
        throw new ModelError(
          CODE.model.loadFailed,
          `onnxruntime could not load ${bundle.dir}: ${errorMessage(cause)}`,
          {
            cause,
          },
        );
      }
    }
    try {
      checkAgainstModel(bundle, started.metadata);
    } catch (error) {
      await started.worker.terminate();
      throw error;
    }
    return new Classifier(bundle, started.worker, provider, fixedBatchOf(bundle, started.metadata));
  }

  /**
   * A tensor for `count` images, to fill and pass to `classify`: a buffer an earlier run
   * handed back when one is large enough (its contents are stale, not zero), else a new one.
   * Recycling matters on a GPU, where allocating (and page-faulting) 77 MB per batch of 128
   * costs a good part of an inference.
   */
  inputBatch(count: number): Float32Array {
    const floats = count * this.imageLength;
    const at = this.#spare.findIndex((b) => b.byteLength >= floats * 4);
    const buffer = at >= 0 ? (this.#spare.splice(at, 1)[0] as ArrayBuffer) : new ArrayBuffer(floats * 4);
    return new Float32Array(buffer, 0, floats);
  }

  /**
   * Runs the model once over `count` images laid end to end in `batch` and returns
   * the `topK` labels of each, best first, with probabilities.
   *
   * `batch`'s buffer moves to the inference thread without a copy: afterwards it is
   * detached here (byteLength 0) and comes back through `inputBatch`. Pass a tensor that
   * owns its buffer (from `inputBatch` or `new Float32Array(n)`), or a copy to keep one.
   */
  async classify(batch: Float32Array, count: number, topK: number): Promise<Label[][]> {
    if (count === 0) return [];
    if (batch.length < count * this.imageLength) {
      throw new RangeError(
        `batch holds ${batch.length} floats, ${count} images need ${count * this.imageLength}` +
          (batch.buffer.byteLength === 0 ? ' (its buffer was already handed to an earlier classify)' : ''),
      );
    }
    const fixed = this.#fixedBatch;
    if (fixed !== undefined && count !== fixed) {
      const out: Label[][] = [];
      for (let start = 0; start < count; start += fixed) {
        const n = Math.min(fixed, count - start);
        const chunk = new Float32Array(fixed * this.imageLength);
        chunk.set(batch.subarray(start * this.imageLength, (start + n) * this.imageLength));
        out.push(...(await this.#run(chunk, fixed, topK)).slice(0, n));
      }
      return out;
    }
    return this.#run(batch, count, topK);
  }

  async #run(batch: Float32Array, count: number, topK: number): Promise<Label[][]> {
    const { input, output } = this.manifest;
    const dims = inputDims(input, count);
    const data =
      batch.length === count * this.imageLength ? batch : batch.subarray(0, count * this.imageLength);
    let scores: Float32Array | null;
    try {
      const result = await this.#session.run(input.name, output.name, data, dims);
      this.#keep(result.input);
      scores = result.output;
    } catch (cause) {
      if (cause instanceof OnnxWorkerError) this.#keep(cause.input);
      throw new ModelError(CODE.model.inferenceFailed, `inference failed: ${errorMessage(cause)}`, {
        cause,
        permanent: false,
      });
    }
    if (!(scores instanceof Float32Array) || scores.length < count * this.labels.length) {
      throw new ModelError(CODE.model.mismatch, `output ${output.name} is not a float32 tensor`);
    }
    const classes = this.labels.length;
    const k = Math.min(topK, classes);
    const out: Label[][] = [];
    for (let i = 0; i < count; i++) {
      const row = scores.subarray(i * classes, (i + 1) * classes);
      // The output buffer is ours (transferred): normalise each row where it lies.
      if (output.kind === 'logits') softmaxInPlace(row);
      out.push(topLabels(row, this.labels, k));
    }
    return out;
  }

  /** Keeps a returned input buffer for `inputBatch`; a few suffice for the batches in flight. */
  #keep(input: Float32Array | undefined): void {
    if (!input || input.buffer.byteLength === 0 || !(input.buffer instanceof ArrayBuffer)) return;
    if (this.#spare.length < MAX_SPARE_INPUTS) this.#spare.push(input.buffer);
  }

  async release(): Promise<void> {
    await this.#session.release();
  }
}

/** The session options a Classifier runs with (less the providers); the bench's raw session uses them too. */
export function sessionOptions(options: ClassifierOptions = {}): InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: options.intraOpThreads ?? availableParallelism(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    extra: { session: { intra_op: { allow_spinning: options.spinThreads ? '1' : '0' } } },
  };
}

function fixedBatchOf(bundle: ModelBundle, session: SessionMetadata): number | undefined {
  const meta = session.inputMetadata.find((m) => m.name === bundle.manifest.input.name);
  const first = meta?.isTensor ? meta.shape[0] : undefined;
  return typeof first === 'number' && first > 0 ? first : undefined;
}

function checkAgainstModel(bundle: ModelBundle, session: SessionMetadata): void {
  const { input, output } = bundle.manifest;
  const where = `${bundle.dir}/manifest.json`;
  const inputMeta = session.inputMetadata.find((m) => m.name === input.name);
  if (!inputMeta) {
    throw new ModelError(
      CODE.model.mismatch,
      `${where}: input "${input.name}" is not in the model (it has ${session.inputNames.join(', ')})`,
    );
  }
  if (inputMeta.isTensor) {
    const expected =
      input.layout === 'NCHW' ? [null, 3, input.height, input.width] : [null, input.height, input.width, 3];
    const shape = inputMeta.shape;
    const fits =
      shape.length === 4 &&
      expected.every((dim, i) => dim === null || typeof shape[i] !== 'number' || shape[i] === dim);
    if (!fits) {
      throw new ModelError(
        CODE.model.mismatch,
        `${where}: the model's input ${input.name} has shape [${shape.join(', ')}], the manifest says ` +
          `${input.layout} ${input.height}x${input.width} with 3 channels`,
      );
    }
  }
  const outputMeta = session.outputMetadata.find((m) => m.name === output.name);
  if (!outputMeta) {
    throw new ModelError(
      CODE.model.mismatch,
      `${where}: output "${output.name}" is not in the model (it has ${session.outputNames.join(', ')})`,
    );
  }
  if (outputMeta.isTensor) {
    const classes = outputMeta.shape[outputMeta.shape.length - 1];
    if (typeof classes === 'number' && classes !== bundle.labels.length) {
      throw new ModelError(
        CODE.model.mismatch,
        `${where}: the model has ${classes} classes, ${bundle.manifest.labelsFile} lists ${bundle.labels.length}`,
      );
    }
  }
}

export function softmax(logits: Float32Array): Float32Array {
  return softmaxInPlace(Float32Array.from(logits));
}

/** Softmax over `values`, written back into them. */
export function softmaxInPlace(values: Float32Array): Float32Array {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of values) if (v > max) max = v;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const e = Math.exp((values[i] as number) - max);
    values[i] = e;
    sum += e;
  }
  for (let i = 0; i < values.length; i++) values[i] = (values[i] as number) / sum;
  return values;
}

/** The k best classes, best first; ties keep the lower class index first. */
export function topLabels(scores: Float32Array, labels: readonly string[], k: number): Label[] {
  const best: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i] as number;
    if (best.length === k && s <= (scores[best[k - 1] as number] as number)) continue;
    let at = best.length;
    while (at > 0 && (scores[best[at - 1] as number] as number) < s) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best.map((i) => ({ label: labels[i] ?? String(i), score: scores[i] as number }));
}
