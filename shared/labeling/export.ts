import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import type { JobsService } from './jobs.ts';
import type { ImageResult, ModelRef, ResultsStore } from './results.ts';
import { imageId } from './results.ts';

/**
 * Which results an export reads. Each is read page by page through a key lookup, never a
 * Scan (docs/decisions/0018-export-formats.md):
 * - `label`: the sharded by-label index, then the results of its hits by BatchGet;
 * - `prefix`: ListObjectsV2 of the images under the prefix, then their results by BatchGet;
 * - `job`: the job's outcome markers, then their results by BatchGet.
 */
export type ExportSelection =
  | { readonly by: 'label'; readonly model: ModelRef; readonly label: string; readonly minScore: number }
  | { readonly by: 'prefix'; readonly model: ModelRef; readonly bucket: string; readonly prefix: string }
  | { readonly by: 'job'; readonly jobId: string };

export interface ExportPorts {
  readonly results: Pick<ResultsStore, 'queryByLabel' | 'findExisting'>;
  readonly jobs: Pick<JobsService, 'get' | 'results'>;
  /** One ListObjectsV2 page of the images bucket. */
  listPage(
    bucket: string,
    prefix: string,
    token: string | undefined,
    maxKeys: number,
  ): Promise<{ objects: ReadonlyArray<{ key: string }>; next?: string }>;
}

/** What an export found besides its rows. */
export interface ExportTally {
  /**
   * Images the selection names that have no result for its model: objects under the
   * prefix not labeled (yet) by it, or index hits whose result is gone. Not rows: an
   * export holds results; the count is reported beside them.
   */
  withoutResult: number;
  /** Told each image counted in `withoutResult` (`labeler evaluate` counts them as misses). */
  readonly onMissing?: (image: { bucket: string; key: string }) => void;
}

/** Hits per label-index page and objects per listing page; one BatchGet reads 100 results. */
const LABEL_PAGE = 100;
const LIST_PAGE = 1000;

/**
 * Every result the selection names, streamed: at most one page of keys and its results
 * are held at a time, whatever the size of the selection.
 */
export async function* selectResults(
  selection: ExportSelection,
  ports: ExportPorts,
  tally: ExportTally = { withoutResult: 0 },
): AsyncGenerator<ImageResult> {
  if (selection.by === 'job') {
    if (!(await ports.jobs.get(selection.jobId))) {
      throw new LabelerError(CODE.job.notFound, `job ${selection.jobId} does not exist`);
    }
    yield* ports.jobs.results(selection.jobId);
    return;
  }
  if (selection.by === 'label') {
    let cursor: string | undefined;
    do {
      const page = await ports.results.queryByLabel({
        model: selection.model,
        label: selection.label,
        minScore: selection.minScore,
        limit: LABEL_PAGE,
        ...(cursor ? { cursor } : {}),
      });
      yield* inOrder(page.items, await ports.results.findExisting(page.items, selection.model), tally);
      cursor = page.cursor;
    } while (cursor);
    return;
  }
  let token: string | undefined;
  do {
    const page = await ports.listPage(selection.bucket, selection.prefix, token, LIST_PAGE);
    const images = page.objects.map((o) => ({ bucket: selection.bucket, key: o.key }));
    yield* inOrder(images, await ports.results.findExisting(images, selection.model), tally);
    token = page.next;
  } while (token);
}

/** The results of `images` in the order the index or the listing gave them. */
function* inOrder(
  images: ReadonlyArray<{ bucket: string; key: string }>,
  found: ReadonlyMap<string, ImageResult>,
  tally: ExportTally,
): Generator<ImageResult> {
  for (const image of images) {
    const result = found.get(imageId(image));
    if (result) yield result;
    else {
      tally.withoutResult++;
      tally.onMissing?.(image);
    }
  }
}
