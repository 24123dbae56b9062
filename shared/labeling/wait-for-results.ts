import { setTimeout as sleep } from 'node:timers/promises';
import type { ImageResult, ModelRef, ResultsStore } from './results.ts';
import { imageId } from './results.ts';

type Image = { bucket: string; key: string; eTag: string };

export interface WaitOutcome<I extends Image> {
  /** Results for the images' current content (matching eTag), by imageId. */
  readonly results: Map<string, ImageResult>;
  /** Images still without one. */
  readonly pending: I[];
  /** Why it stopped before every image had a result. */
  readonly stopped?: 'timeout' | 'aborted';
}

/**
 * Polls the results store until every image has a result for its current content
 * (matching eTag), the deadline passes or `signal` aborts; returns what it found either way.
 */
export async function waitForResults<I extends Image>(
  store: ResultsStore,
  images: readonly I[],
  model: ModelRef,
  options: {
    timeoutMs: number;
    pollMs?: number;
    signal?: AbortSignal;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<WaitOutcome<I>> {
  const results = new Map<string, ImageResult>();
  let pending = [...images];
  const deadline = Date.now() + options.timeoutMs;
  while (pending.length > 0) {
    if (options.signal?.aborted) return { results, pending, stopped: 'aborted' };
    const existing = await store.findExisting(pending, model);
    pending = pending.filter((image) => {
      const result = existing.get(imageId(image));
      if (result && result.eTag === image.eTag) {
        results.set(imageId(image), result);
        return false;
      }
      return true;
    });
    options.onProgress?.(results.size, images.length);
    if (pending.length === 0) break;
    if (Date.now() > deadline) return { results, pending, stopped: 'timeout' };
    await sleep(options.pollMs ?? 200, undefined, { signal: options.signal }).catch(() => undefined);
  }
  return { results, pending };
}
