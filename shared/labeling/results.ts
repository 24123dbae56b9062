import type { Label } from '../model/classifier.ts';
import type { Timings } from './image-labeler.ts';

/** The model a result was produced by; results are kept per (image, model id and version). */
export interface ModelRef {
  readonly id: string;
  readonly version: string;
}

/** One labeled (or failed) image: the unit stored in DynamoDB and exported to S3. */
export interface ImageResult {
  readonly bucket: string;
  readonly key: string;
  readonly eTag: string;
  readonly size: number;
  readonly sequencer: string;
  readonly model: ModelRef;
  readonly status: 'ok' | 'failed';
  readonly labels: readonly Label[];
  readonly error?: { readonly code: string; readonly message: string };
  readonly width?: number;
  readonly height?: number;
  readonly format?: string;
  readonly jobId?: string;
  readonly timings: Timings;
  readonly labeledAt: string;
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

/** A score as every printed result carries it: six decimals, enough to rank, without float noise. */
export function printedScore(score: number): number {
  return Math.round(score * 1e6) / 1e6;
}

/** Labels as the JSON Lines contract prints them (`label`, `local run`, `query`). */
export function printedLabels(labels: readonly Label[]): Label[] {
  return labels.map((l) => ({ label: l.label, score: printedScore(l.score) }));
}

/**
 * A stored result as the CLI prints it, one JSON line: `labels` when ok, `error` when
 * failed, as `labeler label` prints a file's outcome.
 */
export function printedResult(r: ImageResult): Record<string, unknown> {
  return {
    bucket: r.bucket,
    key: r.key,
    eTag: r.eTag,
    model: r.model.id,
    modelVersion: r.model.version,
    status: r.status,
    ...(r.status === 'ok' ? { labels: printedLabels(r.labels) } : { error: r.error }),
    ...(r.jobId ? { jobId: r.jobId } : {}),
    labeledAt: r.labeledAt,
  };
}

/** One by-label query hit as the CLI prints it. */
export function printedHit(h: LabelHit): LabelHit {
  return { bucket: h.bucket, key: h.key, label: h.label, score: printedScore(h.score), rank: h.rank };
}
