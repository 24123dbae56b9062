import { LabelerError } from '../errors.ts';
import type { ImageResult, ModelRef, ResultsStore } from './results.ts';
import { imageId } from './results.ts';

/**
 * Polls the results store until every image has a result for its current content
 * (matching eTag), or the deadline passes. Reports progress as results arrive.
 */
export async function waitForResults(
  store: ResultsStore,
  images: ReadonlyArray<{ bucket: string; key: string; eTag: string }>,
  model: ModelRef,
  options: { timeoutMs: number; pollMs?: number; onProgress?: (done: number, total: number) => void },
): Promise<Map<string, ImageResult>> {
  const found = new Map<string, ImageResult>();
  let pending = [...images];
  const deadline = Date.now() + options.timeoutMs;
  while (pending.length > 0) {
    const existing = await store.findExisting(pending, model);
    pending = pending.filter((image) => {
      const result = existing.get(imageId(image));
      if (result && result.eTag === image.eTag) {
        found.set(imageId(image), result);
        return false;
      }
      return true;
    });
    options.onProgress?.(found.size, images.length);
    if (pending.length === 0) break;
    if (Date.now() > deadline) {
      throw new LabelerError(
        'pipeline/timeout',
        `${pending.length} of ${images.length} images have no result after ${Math.round(options.timeoutMs / 1000)} s ` +
          `(first: ${pending.slice(0, 3).map(imageId).join(', ')}); check the dead-letter queue`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 200));
  }
  return found;
}
