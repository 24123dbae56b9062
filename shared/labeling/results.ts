import { type ImageResult, printedScore } from './result-contract.ts';

// The result's fields and printed shapes live in the result contract; importers of this
// module's names keep working.
export type { ImageResult } from './result-contract.ts';
export { printedLabels, printedResult, printedScore } from './result-contract.ts';

/** The model a result was produced by; results are kept per (image, model id and version). */
export interface ModelRef {
  readonly id: string;
  readonly version: string;
}

export interface LabelHit {
  readonly bucket: string;
  readonly key: string;
  readonly label: string;
  readonly score: number;
  readonly rank: number;
}

export interface Page<T> {
  readonly items: readonly T[];
  /** Opaque; pass back to get the next page. Absent on the last page. */
  readonly cursor?: string;
}

/** Port: where results live and how they are queried. Writes are idempotent. */
export type PutOutcome = 'written' | 'duplicate';

/** A result to write and the result it replaces, if any. */
export interface ResultWrite {
  readonly result: ImageResult;
  readonly previous?: ImageResult | undefined;
  /**
   * A job in mode `all` labels the same content again: the result is written over one with
   * the same eTag, unless that one is already this job's (a redelivery writes nothing).
   */
  readonly relabel?: boolean;
}

export interface ResultsStore {
  /** Existing results for these images under this model, keyed by `bucket/key`. */
  findExisting(
    images: ReadonlyArray<{ bucket: string; key: string }>,
    model: ModelRef,
  ): Promise<Map<string, ImageResult>>;
  /**
   * Writes the result unless the same image content (eTag) already has one, or a newer
   * S3 event (higher sequencer) already wrote. Returns which happened. `previous` is
   * the result this one replaces, if any (its label index entries are cleaned up).
   */
  put(result: ImageResult, previous?: ImageResult, relabel?: boolean): Promise<PutOutcome>;
  /**
   * `put` for each write, in as few requests as the store can: each result is still written
   * or not as a whole, with its job count. One settled outcome per write, in order.
   */
  putAll(writes: readonly ResultWrite[]): Promise<Array<PromiseSettledResult<PutOutcome>>>;
  getByImage(bucket: string, key: string): Promise<ImageResult[]>;
  /**
   * Images whose `label` scored >= minScore under `model`, best first; one paginated
   * Query. Scores below the store's index floor (LABELING.indexMinScore) are not indexed,
   * so a lower minScore reads from the floor.
   */
  queryByLabel(query: {
    model: ModelRef;
    label: string;
    minScore: number;
    limit: number;
    cursor?: string;
  }): Promise<Page<LabelHit>>;
}

/** Port: reads image bytes. Throws ObjectNotFoundError (permanent) or TransientError. */
export interface ImageStore {
  get(ref: { bucket: string; key: string; eTag: string }): Promise<Uint8Array>;
}

/** Port: the JSON Lines export, one object per batch. */
export interface ExportStore {
  putLines(key: string, lines: readonly string[]): Promise<void>;
}

export function imageId(ref: { bucket: string; key: string }): string {
  return `${ref.bucket}/${ref.key}`;
}

/** One by-label query hit as the CLI prints it. */
export function printedHit(h: LabelHit): LabelHit {
  return { bucket: h.bucket, key: h.key, label: h.label, score: printedScore(h.score), rank: h.rank };
}
