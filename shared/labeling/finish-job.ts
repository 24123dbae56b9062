import { addTally, NO_TALLY, type Top1Tally } from './drift.ts';
import type { JobCounts } from './jobs.ts';

/** A job's counts without its total: what a recount adds up. */
export type OutcomeCounts = Omit<JobCounts, 'total'>;

export const NO_COUNTS: OutcomeCounts = { labeled: 0, failed: 0, skipped: 0, cancelled: 0 };

/** A chain's first step: nothing counted yet, the histogram carried from here on. */
export function firstRecountStep(jobId: string): RecountMessage {
  return { kind: 'recount', jobId, shard: 0, counts: NO_COUNTS, top1: NO_TALLY };
}

/** One step of a job's finishing recount, as the plan queue carries it (decision 0027). */
export interface RecountMessage {
  readonly kind: 'recount';
  readonly jobId: string;
  /** The marker shard this step reads from (0 .. JOBS.counterShards - 1). */
  readonly shard: number;
  /** Where in `shard` to go on; absent: from its start. */
  readonly cursor?: string;
  /** The markers counted by the steps before this one. */
  readonly counts: OutcomeCounts;
  /**
   * The top-1 labels and scores of those markers (decision 0039). Absent in a step sent
   * before the histogram existed: that chain ends without one.
   */
  readonly top1?: Top1Tally;
}

/**
 * Port: the jobs table as the finishing recount reads and writes it. A job above
 * `inlineRecountMax` images is not recounted inside whichever invocation got there: its
 * `checkCompletion` starts one chain of bounded recount steps on the plan queue instead.
 */
export interface RecountJobsPort {
  /** One page of a shard's markers from `cursor`, counted; `next` absent at the shard's end. */
  markersPage(
    jobId: string,
    shard: number,
    cursor: string | undefined,
  ): Promise<{ counts: OutcomeCounts; top1: Top1Tally; next?: string }>;
  /**
   * The end of a chain: with counts adding up to the total the job finishes with them (a
   * conditional transition, so a duplicate last step does nothing); short of it (an image
   * still in flight after an over-count) the chain's flag is cleared, and the chain starts
   * again when a completion check came in meanwhile. Returns whether the job finished.
   */
  endRecount(jobId: string, counts: OutcomeCounts, top1?: Top1Tally): Promise<boolean>;
}

export function addCounts(a: OutcomeCounts, b: OutcomeCounts): OutcomeCounts {
  return {
    labeled: a.labeled + b.labeled,
    failed: a.failed + b.failed,
    skipped: a.skipped + b.skipped,
    cancelled: a.cancelled + b.cancelled,
  };
}

/**
 * One recount step: up to `maxPages` pages of markers from the message's shard and cursor,
 * then the next step (with the new cursor and counts) or, after the last shard, the chain's
 * end. A redelivered step reads the same range from its own message: the same counts.
 */
export async function recountStep(
  message: RecountMessage,
  jobs: RecountJobsPort,
  send: (next: RecountMessage) => Promise<void>,
  options: { readonly shards: number; readonly maxPages: number },
): Promise<{ readonly done: boolean; readonly finished: boolean }> {
  let { shard, cursor, counts, top1 } = message;
  for (let pages = 0; pages < Math.max(1, options.maxPages); pages++) {
    const page = await jobs.markersPage(message.jobId, shard, cursor);
    counts = addCounts(counts, page.counts);
    if (top1) top1 = addTally(top1, page.top1);
    cursor = page.next;
    if (cursor === undefined) shard++;
    if (shard >= options.shards) {
      return { done: true, finished: await jobs.endRecount(message.jobId, counts, top1) };
    }
  }
  await send({
    kind: 'recount',
    jobId: message.jobId,
    shard,
    ...(cursor ? { cursor } : {}),
    counts,
    ...(top1 ? { top1 } : {}),
  });
  return { done: false, finished: false };
}
