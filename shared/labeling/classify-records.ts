import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { CODE } from '../error-codes.ts';
import { errorMessage, LabelerError, TransientError } from '../errors.ts';
import { RESULTS_PREFIX } from '../settings.ts';
import { type Top1, topOfResult } from './drift.ts';
import type { ImageLabeler, LabelOutcome } from './image-labeler.ts';
import { isCancelled, type JobLedger, type JobOutcome } from './jobs.ts';
import { resultLine } from './result-contract.ts';
import type { ExportStore, ImageResult, ImageStore, ModelRef, ResultsStore } from './results.ts';
import { imageId } from './results.ts';
import type { S3ObjectRef } from './s3-event.ts';
import { parseS3EventBody } from './s3-event.ts';

/** The parts of an SQS record this use case needs. */
export interface QueueRecord {
  readonly messageId: string;
  readonly body: string;
  /** SQS system attributes; ApproximateReceiveCount tells the last attempt (see `maxReceiveCount`). */
  readonly attributes?: { readonly ApproximateReceiveCount?: string };
}

/** The code of a failed result standing in for one the results store refused for good (decision 0026). */
export const UNSTORABLE = CODE.result.notStorable;

/** The code of a job image whose message ran out of receives (decision 0014). */
export const RETRIES_EXHAUSTED = CODE.queue.retriesExhausted;

export interface ClassifyLog {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

export interface ClassifyDeps {
  readonly labeler: ImageLabeler;
  readonly images: ImageStore;
  readonly results: ResultsStore;
  readonly exports: ExportStore;
  readonly log: ClassifyLog;
  readonly jobId?: string;
  /** Where the images of labeling jobs are counted (skipped, cancelled, completion). */
  readonly jobs?: JobLedger;
  /**
   * The maxReceiveCount of the queue feeding this worker (CLASSIFY or GPU_WORKER in
   * shared/settings.ts, the same constant infra gives the redrive policy). On a message's
   * last receive, job images that still fail transiently are recorded `failed`, so the job
   * finishes; the message still goes to the dead-letter queue. Unset: never the last.
   */
  readonly maxReceiveCount?: number;
  readonly now?: () => Date;
  /**
   * The invocation's deadline: no image starts once less than `reserveMs` is left, and the
   * messages of the images not started go back to the queue (batch item failures), to be
   * labeled by a later invocation; what was done is not done again (decision 0025).
   */
  readonly deadline?: InvocationDeadline;
  /**
   * What this invocation's clients have used so far (decision 0035): with `jobs`, each job's
   * share is added to its usage at the end, for its receipt.
   */
  readonly usage?: InvocationUsage;
}

/** Requests and DynamoDB units of one invocation, as its metered clients counted them. */
export interface InvocationUsage {
  snapshot(): { s3Gets: number; s3Puts: number; dynamoWriteUnits: number; dynamoReadUnits: number };
}

export interface InvocationDeadline {
  /** Milliseconds left before the invocation times out (Lambda's context.getRemainingTimeInMillis). */
  remainingMs(): number;
  readonly reserveMs: number;
}

/** The code of an image not started because its invocation was running out of time. */
export const DEADLINE = CODE.invocation.deadline;

export interface BatchReport {
  /** Message ids to hand back to the queue (transient failures and unreadable messages). */
  readonly failedMessageIds: string[];
  readonly counts: {
    records: number;
    images: number;
    /** Images that went through the model in this invocation. */
    inferred: number;
    labeled: number;
    failed: number;
    duplicates: number;
    superseded: number;
    /** Images of a cancelled job, dropped without labeling. */
    cancelled: number;
    retried: number;
    /** Images not started because the invocation was running out of time; their messages come back. */
    deferred: number;
    testEvents: number;
    invalid: number;
  };
  /**
   * Milliseconds spent per stage. s3Get and decode are summed over images; inference and
   * writes are summed over inference runs (`batchSize` images each). Writes overlap the
   * next run's inference, so the stages can add up to more than the wall time.
   */
  readonly stageMs: { s3Get: number; decode: number; inference: number; writes: number; export: number };
}

interface Work {
  readonly messageId: string;
  readonly ref: S3ObjectRef;
}

/**
 * Labels the images announced by a batch of S3 event messages, exactly once per
 * (image content, model): existing results are skipped, permanent image errors become
 * failed results, transient errors send the message back to the queue.
 */
export async function classifyRecords(
  records: readonly QueueRecord[],
  deps: ClassifyDeps,
): Promise<BatchReport> {
  const started = performance.now();
  const report = await classifyBatch(records, deps);
  await addJobUsage(records, deps, performance.now() - started);
  return report;
}

/**
 * Adds this invocation's usage to each job it labeled for, in proportion to the job's images
 * in it (decision 0035). The event source's receive and delete are counted by rule (Lambda's
 * poller sends them, not this code), and this ADD's own write unit with them.
 */
async function addJobUsage(records: readonly QueueRecord[], deps: ClassifyDeps, ms: number): Promise<void> {
  const { jobs, usage } = deps;
  if (!jobs?.addUsage || !usage) return;
  const perJob = new Map<string, number>();
  let images = 0;
  for (const record of records) {
    const parsed = parseS3EventBody(record.body);
    if (parsed.kind !== 'objects') continue;
    for (const ref of parsed.objects) {
      images++;
      if (ref.jobId) perJob.set(ref.jobId, (perJob.get(ref.jobId) ?? 0) + 1);
    }
  }
  if (perJob.size === 0) return;
  const used = usage.snapshot();
  for (const [jobId, n] of perJob) {
    const share = n / images;
    try {
      await jobs.addUsage(jobId, {
        invocations: share,
        computeMs: ms * share,
        s3Gets: used.s3Gets * share,
        s3Puts: used.s3Puts * share,
        sqsRequests: 2 * share,
        dynamoWriteUnits: used.dynamoWriteUnits * share + 1,
        dynamoReadUnits: used.dynamoReadUnits * share,
      });
    } catch (error) {
      // The receipt misses this invocation's share; the images and their counts are unaffected.
      deps.log.warn('could not add the invocation to the job usage', { jobId, error: errorMessage(error) });
    }
  }
}

async function classifyBatch(records: readonly QueueRecord[], deps: ClassifyDeps): Promise<BatchReport> {
  const { labeler, results, log } = deps;
  const model: ModelRef = {
    id: labeler.classifier.manifest.id,
    version: labeler.classifier.manifest.version,
  };
  const failed = new Set<string>();
  const counts = {
    records: records.length,
    images: 0,
    inferred: 0,
    labeled: 0,
    failed: 0,
    duplicates: 0,
    superseded: 0,
    cancelled: 0,
    retried: 0,
    deferred: 0,
    testEvents: 0,
    invalid: 0,
  };
  const stageMs = { s3Get: 0, decode: 0, inference: 0, writes: 0, export: 0 };

  const work: Work[] = [];
  for (const record of records) {
    const parsed = parseS3EventBody(record.body);
    if (parsed.kind === 'test') counts.testEvents++;
    else if (parsed.kind === 'invalid') {
      // Retried, then parked in the dead-letter queue where `labeler dlq list` shows it.
      counts.invalid++;
      failed.add(record.messageId);
      log.error('unreadable message', { messageId: record.messageId, reason: parsed.reason });
    } else for (const ref of parsed.objects) work.push({ messageId: record.messageId, ref });
  }
  counts.images = work.length;
  if (work.length === 0) return { failedMessageIds: [...failed], counts, stageMs };
  const allWork = [...work];
  // Why each image's message goes back to the queue, and which images got an outcome
  // here: on a message's last receive, the rest of its job images are recorded failed.
  const lastError = new Map<Work, { code: string; message: string }>();
  const settled = new Set<Work>();
  const retryLater = (w: Work, error: unknown): void => {
    failed.add(w.messageId);
    lastError.set(w, {
      code: error instanceof LabelerError ? error.code : CODE.internal.unexpected,
      message: errorMessage(error),
    });
  };

  // Job accounting: every image of a job gets exactly one outcome (decision 0014). The
  // marker behind each outcome makes a redelivered message count nothing a second time.
  const jobs = deps.jobs;
  const touchedJobs = new Set<string>();
  const recordOutcome = async (
    w: Work,
    outcome: JobOutcome,
    error?: { code: string; message: string },
    top?: Top1,
  ): Promise<void> => {
    const jobId = w.ref.jobId;
    if (!jobs || !jobId) return;
    try {
      await jobs.record(jobId, w.ref, outcome, error, top);
      settled.add(w);
      touchedJobs.add(jobId);
    } catch (error) {
      counts.retried++;
      retryLater(w, error);
      log.warn('could not record a job outcome; the message goes back to the queue', {
        messageId: w.messageId,
        jobId,
        outcome,
        error: errorMessage(error),
      });
    }
  };
  // A message on its last receive that still fails goes to the dead-letter queue, and its
  // job images would never get an outcome: the job would stay running for ever. They are
  // recorded failed here (the marker keeps a later redrive from counting them again), and
  // the message is still reported failed, so it lands in the DLQ for inspection.
  async function recordExhausted(): Promise<void> {
    const max = deps.maxReceiveCount;
    if (!jobs || max === undefined) return;
    const lastTry = new Map<string, number>();
    for (const r of records) {
      const received = Number(r.attributes?.ApproximateReceiveCount ?? 0);
      if (failed.has(r.messageId) && received >= max) lastTry.set(r.messageId, received);
    }
    for (const w of allWork) {
      const received = lastTry.get(w.messageId);
      const jobId = w.ref.jobId;
      if (received === undefined || !jobId || settled.has(w)) continue;
      // No error of its own: another image of its message (or the message's job) failed first.
      const cause = lastError.get(w) ?? {
        code: CODE.queue.messageFailed,
        message: 'not processed: its message failed on another of its images',
      };
      const error = {
        code: RETRIES_EXHAUSTED,
        message: `gave up after ${received} receives (maxReceiveCount ${max}); last error ${cause.code}: ${cause.message}`,
      };
      try {
        await jobs.record(jobId, w.ref, 'failed', error);
        settled.add(w);
        touchedJobs.add(jobId);
        log.error('retries exhausted: the job records the image failed; the message goes to the DLQ', {
          messageId: w.messageId,
          jobId,
          image: imageId(w.ref),
          code: cause.code,
          error: cause.message,
        });
      } catch (recordError) {
        // Nothing left to try: the message reaches the DLQ without an outcome (decision 0014).
        log.error('retries exhausted and the job outcome could not be recorded', {
          messageId: w.messageId,
          jobId,
          image: imageId(w.ref),
          error: errorMessage(recordError),
        });
      }
    }
  }

  async function settleJobs(): Promise<void> {
    await recordExhausted();
    for (const jobId of touchedJobs) {
      try {
        await jobs?.checkCompletion(jobId);
      } catch (error) {
        // The planner and later batches check again; the job completes with the next check.
        log.warn('could not check job completion', { jobId, error: errorMessage(error) });
      }
    }
  }

  if (jobs) {
    const cancelled = new Set<string>();
    for (const jobId of new Set(work.flatMap((w) => (w.ref.jobId ? [w.ref.jobId] : [])))) {
      try {
        if (isCancelled((await jobs.settings(jobId))?.status)) cancelled.add(jobId);
      } catch (error) {
        for (const w of work) if (w.ref.jobId === jobId) retryLater(w, error);
        log.warn('could not read a job; its images go back to the queue', {
          jobId,
          error: errorMessage(error),
        });
      }
    }
    const kept: Work[] = [];
    for (const w of work) {
      if (failed.has(w.messageId)) counts.retried++;
      else if (w.ref.jobId && cancelled.has(w.ref.jobId)) {
        counts.cancelled++;
        await recordOutcome(w, 'cancelled');
      } else kept.push(w);
    }
    work.splice(0, work.length, ...kept);
  }

  let existing: Map<string, ImageResult>;
  try {
    existing = await results.findExisting(
      work.map((w) => w.ref),
      model,
    );
  } catch (error) {
    log.warn('could not read existing results; the batch goes back to the queue', {
      error: errorMessage(error),
    });
    for (const w of work) retryLater(w, error);
    counts.retried += work.length;
    await settleJobs();
    return { failedMessageIds: [...failed], counts, stageMs };
  }

  // One run per distinct image content; later copies in the batch and stored results are duplicates.
  const todo: Work[] = [];
  const seen = new Set<string>();
  // Images a job in mode `all` labels again although this model version labeled them.
  const relabel = new Set<Work>();
  for (const w of work) {
    const id = `${imageId(w.ref)}#${w.ref.eTag}`;
    const prior = existing.get(imageId(w.ref));
    if (seen.has(id)) counts.duplicates++;
    else if (prior?.eTag === w.ref.eTag && relabels(w.ref, prior)) {
      seen.add(id);
      relabel.add(w);
      todo.push(w);
    } else if (prior?.eTag === w.ref.eTag) {
      // Already labeled by this model version: skipped by uploads and by a job in mode
      // `stale`. The job's own result (a redelivery) is its outcome: the delivery that wrote
      // it may have stopped before counting it (decision 0027); if it counted, the marker
      // refuses this second count.
      counts.duplicates++;
      const own = w.ref.jobId !== undefined && prior.jobId === w.ref.jobId;
      if (!own) await recordOutcome(w, 'skipped');
      else
        await recordOutcome(w, prior.status === 'ok' ? 'labeled' : 'failed', prior.error, topOfResult(prior));
    } else {
      seen.add(id);
      todo.push(w);
    }
  }

  const labeledAt = (deps.now?.() ?? new Date()).toISOString();
  const written: ImageResult[] = [];
  // A run's results are written together (ResultsStore.putAll): few requests per image.
  const storeRun = async (run: ReadonlyArray<{ item: Work; outcome: LabelOutcome }>): Promise<void> => {
    const toWrite: Array<{ w: Work; result: ImageResult }> = [];
    for (const { item: w, outcome } of run) {
      if (outcome.status === 'failed' && outcome.error.code === DEADLINE) {
        counts.deferred++;
        failed.add(w.messageId);
        lastError.set(w, outcome.error);
      } else if (outcome.status === 'failed' && outcome.retryable) {
        counts.retried++;
        failed.add(w.messageId);
        lastError.set(w, outcome.error);
        log.warn('transient failure; the message goes back to the queue', {
          messageId: w.messageId,
          image: imageId(w.ref),
          code: outcome.error.code,
          error: outcome.error.message,
        });
      } else if (outcome.status === 'failed' && outcome.error.code === CODE.object.changed) {
        // The upload that changed it has an event of its own; for a job it is skipped.
        counts.superseded++;
        await recordOutcome(w, 'skipped');
      } else
        toWrite.push({ w, result: toResult(w.ref, model, outcome, labeledAt, w.ref.jobId ?? deps.jobId) });
    }
    await write(toWrite, true);
  };
  const write = async (
    toWrite: ReadonlyArray<{ w: Work; result: ImageResult }>,
    firstTry: boolean,
  ): Promise<void> => {
    if (toWrite.length === 0) return;
    const outcomes = await results.putAll(
      toWrite.map(({ w, result }) => ({
        result,
        previous: existing.get(imageId(result)),
        ...(relabel.has(w) ? { relabel: true } : {}),
      })),
    );
    const refused: Array<{ w: Work; result: ImageResult }> = [];
    for (const [i, { w, result }] of toWrite.entries()) {
      const put = outcomes[i];
      const reason: unknown = put?.status === 'rejected' ? put.reason : undefined;
      if (firstTry && reason instanceof LabelerError && reason.permanent) {
        // The store refuses this result for good (decision 0026): on this first receive it
        // becomes a failed result saying so, which is small enough to store, not five receives
        // and the DLQ. If even that is refused, the message goes back to the queue.
        log.error('the result cannot be stored; a failed result records why', {
          messageId: w.messageId,
          image: imageId(w.ref),
          code: reason.code,
          error: reason.message,
        });
        const { width: _w, height: _h, format: _f, ...rest } = result;
        refused.push({
          w,
          result: {
            ...rest,
            status: 'failed',
            labels: [],
            error: { code: UNSTORABLE, message: `the result could not be stored: ${reason.message}` },
          },
        });
      } else if (put?.status === 'fulfilled' && put.value === 'duplicate') {
        settled.add(w);
        counts.duplicates++;
        // Another writer got there first (or this job already counted it): one outcome, at most.
        await recordOutcome(w, 'skipped');
      } else if (put?.status === 'fulfilled') {
        settled.add(w);
        if (result.jobId) touchedJobs.add(result.jobId);
        written.push(result);
        if (result.status === 'ok') counts.labeled++;
        else counts.failed++;
      } else {
        const error = put?.reason ?? new Error('the results store gave no outcome');
        counts.retried++;
        retryLater(w, error);
        log.warn('could not store the result; the message goes back to the queue', {
          messageId: w.messageId,
          image: imageId(w.ref),
          code: error instanceof LabelerError ? error.code : CODE.internal.unexpected,
          error: errorMessage(error),
        });
      }
    }
    await write(refused, false);
  };

  // Runs of `batchSize` images (labelAll decodes run n+1 while run n is in the model), so
  // a large message never becomes one huge tensor. Run n's writes overlap run n+1's
  // inference; runs write one after another, which bounds writes in flight to one run's.
  let writing = Promise.resolve();
  let handed = 0;
  const deadline = deps.deadline;
  const read = (w: Work): Promise<Uint8Array> => {
    if (deadline && deadline.remainingMs() < deadline.reserveMs) {
      throw new TransientError(DEADLINE, 'not started: the invocation was running out of time');
    }
    return deps.images.get(w.ref);
  };
  try {
    for await (const run of labeler.labelAll(todo, read)) {
      handed += run.length;
      // Every image of a run shares the run's inference time: count it once per run.
      stageMs.inference += run[0]?.outcome.timings.inferMs ?? 0;
      for (const { outcome } of run) {
        stageMs.s3Get += outcome.timings.readMs;
        stageMs.decode += outcome.timings.preprocessMs;
        if (outcome.status === 'ok') counts.inferred++;
      }
      writing = writing.then(async () => {
        const started = performance.now();
        await storeRun(run).catch((error: unknown) => {
          // Nothing in storeRun is expected to throw; if it does, the run's unsettled images are retried.
          const unsettled = run.filter(({ item }) => !settled.has(item) && !lastError.has(item));
          counts.retried += unsettled.length;
          for (const { item } of unsettled) retryLater(item, error);
          log.error('unexpected error storing results; their messages go back to the queue', {
            images: unsettled.map(({ item }) => imageId(item.ref)),
            error: errorMessage(error),
          });
        });
        stageMs.writes += performance.now() - started;
      });
    }
  } catch (error) {
    // labelAll gives every image an outcome and does not throw; if it ever does, the
    // images it had not handed out yet go back to the queue rather than being lost.
    for (const w of todo.slice(handed)) retryLater(w, error);
    counts.retried += todo.length - handed;
    log.error('labeling stopped early; the rest of the batch goes back to the queue', {
      error: errorMessage(error),
    });
  }
  await writing;
  if (counts.deferred > 0) {
    log.warn('the invocation was running out of time; images not started go back to the queue', {
      deferred: counts.deferred,
      messages: new Set(allWork.filter((w) => lastError.get(w)?.code === DEADLINE).map((w) => w.messageId))
        .size,
      remainingMs: deadline?.remainingMs(),
    });
  }
  await settleJobs();

  if (written.length > 0) {
    const exportStarted = performance.now();
    const key = exportKey(model, labeledAt, written);
    try {
      await deps.exports.putLines(
        key,
        written.map((r) => JSON.stringify(exportLine(r))),
      );
    } catch (error) {
      // DynamoDB holds these results; the export is rebuilt from it. Say so loudly.
      log.error('export failed; the results are stored in DynamoDB but missing from the S3 export', {
        key,
        images: written.map(imageId),
        error: errorMessage(error),
      });
    }
    stageMs.export = performance.now() - exportStarted;
  }
  return { failedMessageIds: [...failed], counts, stageMs };
}

/**
 * A job in mode `all` labels an object again (decision 0014) unless the existing result is
 * this job's own: then the message is a redelivery, and the image already has its outcome.
 */
function relabels(ref: S3ObjectRef, prior: ImageResult): boolean {
  return ref.jobMode === 'all' && ref.jobId !== undefined && prior.jobId !== ref.jobId;
}

function toResult(
  ref: S3ObjectRef,
  model: ModelRef,
  outcome: LabelOutcome,
  labeledAt: string,
  jobId: string | undefined,
): ImageResult {
  const base = {
    bucket: ref.bucket,
    key: ref.key,
    eTag: ref.eTag,
    size: ref.size,
    sequencer: ref.sequencer,
    model,
    timings: outcome.timings,
    labeledAt,
    ...(jobId ? { jobId } : {}),
  };
  if (outcome.status === 'ok') {
    return {
      ...base,
      status: 'ok',
      labels: outcome.labels,
      width: outcome.width,
      height: outcome.height,
      format: outcome.format,
    };
  }
  return { ...base, status: 'failed', labels: [], error: outcome.error };
}

/** `results/model=<id>/date=<yyyy-mm-dd>/<batch>.jsonl`; the batch name is derived from its content. */
export function exportKey(model: ModelRef, labeledAt: string, written: readonly ImageResult[]): string {
  const hash = createHash('sha256');
  for (const id of written.map((r) => `${imageId(r)}#${r.eTag}`).sort()) hash.update(id).update('\n');
  return `${RESULTS_PREFIX}/model=${model.id}/date=${labeledAt.slice(0, 10)}/${hash.digest('hex').slice(0, 32)}.jsonl`;
}

/** The line the results bucket holds for a result (the contract's `stored` line, the Athena table's row). */
export function exportLine(r: ImageResult): Record<string, unknown> {
  return resultLine(r, 'stored');
}
