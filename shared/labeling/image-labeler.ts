import { performance } from 'node:perf_hooks';
import { CODE, type ErrorCode } from '../error-codes.ts';
import { errorMessage, LabelerError } from '../errors.ts';
import { type ImageLimits, type PreparedImage, preprocessInto } from '../image/preprocess.ts';
import type { Classifier, Label } from '../model/classifier.ts';

export interface LabelingSettings {
  readonly limits: ImageLimits;
  readonly topK: number;
  /** Images per inference run. */
  readonly batchSize: number;
  /** Images read and decoded at once. */
  readonly concurrency: number;
}

export interface Timings {
  readonly readMs: number;
  readonly preprocessMs: number;
  /** The whole batch's inference run, shared by `batchSize` images. */
  readonly inferMs: number;
  readonly batchSize: number;
}

export type LabelOutcome =
  | {
      readonly status: 'ok';
      readonly labels: readonly Label[];
      readonly width: number;
      readonly height: number;
      readonly format: string;
      readonly timings: Timings;
    }
  | {
      readonly status: 'failed';
      readonly error: { readonly code: string; readonly message: string };
      /** False for bad input (record it, move on); true when a later try may succeed. */
      readonly retryable: boolean;
      readonly timings: Timings;
    };

type Prepared =
  | { ok: true; image: PreparedImage; readMs: number; preprocessMs: number }
  | { ok: false; error: unknown; readMs: number; preprocessMs: number };

interface PreparedBatch {
  readonly tensor: Float32Array;
  readonly count: number;
  readonly prepared: readonly Prepared[];
}

export type ReadImage<T> = (item: T) => Promise<Uint8Array>;

/** Reads, decodes and labels images in batches: the one use case every entry point shares. */
export class ImageLabeler {
  readonly classifier: Classifier;
  readonly settings: LabelingSettings;

  constructor(classifier: Classifier, settings: LabelingSettings) {
    this.classifier = classifier;
    this.settings = settings;
  }

  /**
   * Labels `items` with one inference run (callers keep batches to `batchSize`).
   * Never throws for a single item: each gets an outcome, in the order given.
   */
  async labelBatch<T>(items: readonly T[], read: ReadImage<T>): Promise<LabelOutcome[]> {
    return this.#infer(await this.#prepare(items, read));
  }

  /** Reads and decodes a batch into one packed tensor. */
  async #prepare<T>(items: readonly T[], read: ReadImage<T>): Promise<PreparedBatch> {
    const { classifier, settings } = this;
    // A recycled input buffer: classify hands each batch's tensor to the inference thread
    // and gets it back, so steady state allocates no tensor per batch.
    const tensor = classifier.inputBatch(items.length);
    const prepared = await mapLimit(items, settings.concurrency, async (item, index): Promise<Prepared> => {
      const started = performance.now();
      let readMs = 0;
      try {
        const bytes = await read(item);
        readMs = performance.now() - started;
        // Preprocessed images are packed later; write at the item's own slot for now.
        const image = await preprocessInto(
          bytes,
          classifier.manifest.input,
          settings.limits,
          tensor,
          index * classifier.imageLength,
        );
        return { ok: true, image, readMs, preprocessMs: performance.now() - started - readMs };
      } catch (error) {
        return { ok: false, error, readMs, preprocessMs: performance.now() - started - readMs };
      }
    });

    // Pack the decoded images to the front so the model sees only real inputs.
    let count = 0;
    for (let i = 0; i < prepared.length; i++) {
      if (!prepared[i]?.ok) continue;
      if (count !== i) {
        tensor.copyWithin(
          count * classifier.imageLength,
          i * classifier.imageLength,
          (i + 1) * classifier.imageLength,
        );
      }
      count++;
    }
    return { tensor, count, prepared };
  }

  async #infer({ tensor, count, prepared }: PreparedBatch): Promise<LabelOutcome[]> {
    const { classifier, settings } = this;
    let labels: Label[][] = [];
    let inferError: unknown;
    const inferStarted = performance.now();
    try {
      labels = await classifier.classify(tensor, count, settings.topK);
    } catch (error) {
      inferError = error;
    }
    const inferMs = performance.now() - inferStarted;

    let next = 0;
    return prepared.map((p) => {
      const timings = { readMs: p.readMs, preprocessMs: p.preprocessMs, inferMs, batchSize: count };
      if (!p.ok) return failure(p.error, timings);
      const row = labels[next++];
      if (inferError !== undefined || !row) {
        return failure(
          inferError ?? new Error('no output for this image'),
          timings,
          CODE.model.inferenceFailed,
        );
      }
      return {
        status: 'ok' as const,
        labels: row,
        width: p.image.width,
        height: p.image.height,
        format: p.image.format,
        timings,
      };
    });
  }

  /**
   * Labels any number of items, `batchSize` at a time, decoding the next batch while
   * the current one is in the model. Yields each batch's items with their outcomes.
   */
  async *labelAll<T>(
    items: Iterable<T>,
    read: ReadImage<T>,
  ): AsyncGenerator<Array<{ item: T; outcome: LabelOutcome }>> {
    const batches = chunk(items, this.settings.batchSize);
    let current = batches.next();
    let pending = current.done ? undefined : this.#prepare(current.value, read);
    while (!current.done && pending) {
      const batch = current.value;
      const prepared = await pending;
      current = batches.next();
      pending = current.done ? undefined : this.#prepare(current.value, read);
      const outcomes = await this.#infer(prepared);
      yield batch.map((item, i) => ({ item, outcome: outcomes[i] as LabelOutcome }));
    }
  }
}

function failure(
  error: unknown,
  timings: Timings,
  fallbackCode: ErrorCode = CODE.internal.unexpected,
): LabelOutcome {
  if (error instanceof LabelerError) {
    return {
      status: 'failed',
      error: { code: error.code, message: error.message },
      retryable: !error.permanent,
      timings,
    };
  }
  return {
    status: 'failed',
    error: { code: fallbackCode, message: errorMessage(error) },
    retryable: true,
    timings,
  };
}

function* chunk<T>(items: Iterable<T>, size: number): Generator<T[]> {
  let batch: T[] = [];
  for (const item of items) {
    batch.push(item);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results keep the input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return results;
}
