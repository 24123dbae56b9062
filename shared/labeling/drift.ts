import { z } from 'zod';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import { DRIFT } from '../settings.ts';
import { type Job, type LabelSummary, TERMINAL_STATUSES } from './jobs.ts';

/**
 * What a job's finishing recount adds up over the markers of the images it labeled ok
 * (decision 0039): the top-1 label histogram and the score sums behind its summary. Carried
 * in the recount steps' messages like the counts, so the paged recount ends with the same.
 */
export interface Top1Tally {
  /** Images labeled ok whose marker names a top-1 label. */
  readonly images: number;
  /** Top-1 label → images. */
  readonly labels: Readonly<Record<string, number>>;
  readonly scoreSum: number;
  /** Images whose top-1 score is under DRIFT.lowScore. */
  readonly lowScore: number;
}

/** A recount message's tally, checked like its counts (shared/labeling/plan-job.ts). */
export const top1TallySchema = z
  .object({
    images: z.number().int().nonnegative(),
    labels: z.record(z.string(), z.number().int().nonnegative()),
    scoreSum: z.number().nonnegative(),
    lowScore: z.number().int().nonnegative(),
  })
  .strict();

export const NO_TALLY: Top1Tally = { images: 0, labels: {}, scoreSum: 0, lowScore: 0 };

/** An image's top-1 label and score, as its outcome marker keeps it. */
export interface Top1 {
  readonly label: string;
  readonly score: number;
}

/** An ok result's top-1 label and score (its labels come best first); none for a failed one. */
export function topOfResult(result: {
  readonly status: 'ok' | 'failed';
  readonly labels: ReadonlyArray<{ readonly label: string; readonly score: number }>;
}): Top1 | undefined {
  const first = result.status === 'ok' ? result.labels[0] : undefined;
  return first ? { label: first.label, score: first.score } : undefined;
}

export function tallyOf(tops: Iterable<Top1>): Top1Tally {
  const labels: Record<string, number> = {};
  let images = 0;
  let scoreSum = 0;
  let lowScore = 0;
  for (const top of tops) {
    images++;
    labels[top.label] = (labels[top.label] ?? 0) + 1;
    scoreSum += top.score;
    if (top.score < DRIFT.lowScore) lowScore++;
  }
  return { images, labels, scoreSum, lowScore };
}

export function addTally(a: Top1Tally, b: Top1Tally): Top1Tally {
  const labels: Record<string, number> = { ...a.labels };
  for (const [label, n] of Object.entries(b.labels)) labels[label] = (labels[label] ?? 0) + n;
  return {
    images: a.images + b.images,
    labels,
    scoreSum: a.scoreSum + b.scoreSum,
    lowScore: a.lowScore + b.lowScore,
  };
}

/** A finished job's summary of its tally (absent when it labeled nothing ok). */
export function summarize(tally: Top1Tally): LabelSummary | undefined {
  if (tally.images === 0) return undefined;
  return {
    images: tally.images,
    top1: Object.fromEntries(Object.entries(tally.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    meanTop1Score: tally.scoreSum / tally.images,
    shareUnderHalf: tally.lowScore / tally.images,
  };
}

/** Each label's share of a histogram (labels with no images are absent). */
export function shares(histogram: Readonly<Record<string, number>>): Record<string, number> {
  const total = Object.values(histogram).reduce((s, n) => s + n, 0);
  if (total === 0) return {};
  return Object.fromEntries(Object.entries(histogram).map(([label, n]) => [label, n / total]));
}

/**
 * Jensen–Shannon divergence of two histograms, base 2: 0 for the same shares, 1 for
 * histograms with no label in common; symmetric, and finite where one histogram has a label
 * the other lacks (Kullback–Leibler is not). Each histogram is normalised first.
 */
export function jensenShannon(
  p: Readonly<Record<string, number>>,
  q: Readonly<Record<string, number>>,
): number {
  const ps = shares(p);
  const qs = shares(q);
  let sum = 0;
  for (const label of new Set([...Object.keys(ps), ...Object.keys(qs)])) {
    const a = ps[label] ?? 0;
    const b = qs[label] ?? 0;
    const m = (a + b) / 2;
    if (a > 0) sum += a * Math.log2(a / m);
    if (b > 0) sum += b * Math.log2(b / m);
  }
  // Rounding can leave a hair outside [0, 1].
  return Math.min(1, Math.max(0, sum / 2));
}

/** One label's shares in a drift row: in the baseline run and in this one. */
export interface LabelShift {
  readonly label: string;
  readonly baseline: number;
  readonly run: number;
}

export interface DriftRow {
  readonly jobId: string;
  readonly status: Job['status'];
  readonly createdAt: string;
  readonly images: number;
  readonly meanTop1Score?: number;
  readonly shareUnderHalf?: number;
  /** Absent for a run without a label summary (not finished, or nothing labeled ok). */
  readonly divergence?: number;
  readonly overThreshold?: boolean;
  readonly baseline: boolean;
  /** Every label of either run, by the larger change first. */
  readonly labels: readonly LabelShift[];
}

export interface DriftReport {
  readonly schedule: string;
  readonly baselineJobId: string;
  readonly threshold: number;
  /** The schedule's runs, oldest first (the newest `limit` of them). */
  readonly runs: readonly DriftRow[];
}

/**
 * A schedule's first finished run that labeled something: the baseline when neither
 * `--baseline` names one nor the jobs store keeps one (runs finished before decision 0039).
 */
export function firstFinishedRun(runs: readonly Job[]): Job | undefined {
  return [...runs]
    .filter((j) => j.status === 'succeeded' && j.labelSummary !== undefined)
    .sort(
      (a, b) =>
        (a.finishedAt ?? '').localeCompare(b.finishedAt ?? '') || a.createdAt.localeCompare(b.createdAt),
    )[0];
}

/** Each run of a schedule against its baseline: shares then and now, divergence, over or not. */
export function driftReport(
  schedule: string,
  runs: readonly Job[],
  baseline: Job,
  options: { readonly threshold: number; readonly limit?: number },
): DriftReport {
  const base = baseline.labelSummary?.top1 ?? {};
  const baseShares = shares(base);
  const ordered = [...runs].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  const shown =
    options.limit === undefined ? ordered : ordered.slice(Math.max(0, ordered.length - options.limit));
  return {
    schedule,
    baselineJobId: baseline.jobId,
    threshold: options.threshold,
    runs: shown.map((job): DriftRow => {
      const summary = job.labelSummary;
      const runShares = shares(summary?.top1 ?? {});
      const labels = [...new Set([...Object.keys(baseShares), ...Object.keys(runShares)])]
        .map((label) => ({ label, baseline: baseShares[label] ?? 0, run: runShares[label] ?? 0 }))
        .sort(
          (a, b) =>
            Math.abs(b.run - b.baseline) - Math.abs(a.run - a.baseline) || (a.label < b.label ? -1 : 1),
        );
      const divergence = summary ? jensenShannon(base, summary.top1) : undefined;
      return {
        jobId: job.jobId,
        status: job.status,
        createdAt: job.createdAt,
        images: summary?.images ?? 0,
        ...(summary ? { meanTop1Score: summary.meanTop1Score, shareUnderHalf: summary.shareUnderHalf } : {}),
        ...(divergence === undefined ? {} : { divergence, overThreshold: divergence > options.threshold }),
        baseline: job.jobId === baseline.jobId,
        labels,
      };
    }),
  };
}

/** Port: where the finishing process sends the `Labeler/LabelDrift` metric (EMF on AWS). */
export type DriftMetric = (schedule: string, divergence: number) => void;

/** Port: the schedule's baseline as the jobs table keeps it (the first finished run's histogram). */
export interface ScheduleBaselines {
  /**
   * Makes `candidate` the schedule's baseline unless it has one (a conditional write, so the
   * first run to finish keeps it for good); returns the baseline now.
   */
  claimBaseline(
    schedule: string,
    candidate: { jobId: string; top1: Record<string, number> },
  ): Promise<{
    jobId: string;
    top1: Record<string, number>;
  }>;
}

/**
 * What a scheduled job's finish adds (decision 0039): the divergence of its top-1 histogram
 * from the schedule's baseline, which the finishing process sends as the `LabelDrift` metric.
 * The first run to finish with a histogram becomes the baseline (divergence 0). A run that is
 * not scheduled, or labeled nothing ok, has none.
 */
export async function scheduleDrift(
  job: { readonly jobId: string; readonly scheduleName?: string },
  summary: LabelSummary | undefined,
  baselines: ScheduleBaselines,
): Promise<{ readonly schedule: string; readonly divergence: number } | undefined> {
  if (!job.scheduleName || !summary) return undefined;
  const top1 = { ...summary.top1 };
  const baseline = await baselines.claimBaseline(job.scheduleName, { jobId: job.jobId, top1 });
  return { schedule: job.scheduleName, divergence: jensenShannon(baseline.top1, top1) };
}

/** What `jobs schedule drift` and the page read: the jobs, the schedule's baseline, whether it exists. */
export interface DriftSource {
  list(options: { limit: number }): Promise<Job[]>;
  scheduleBaseline?(schedule: string): Promise<string | undefined>;
  /** Whether a schedule of that name exists now (its runs may outlive it). */
  scheduleExists(schedule: string): Promise<boolean>;
}

/** Jobs `jobs schedule drift` reads, newest first, to find a schedule's runs (the listing's own maximum). */
export const DRIFT_JOBS_SCANNED = 1000;

/**
 * A schedule's runs against its baseline: `--baseline`, else the run the jobs store keeps as
 * the schedule's baseline (the first to finish with labels, what the LabelDrift metric
 * compares with), else the first finished run among those listed. Typed errors for a
 * schedule with no runs, none finished, or a baseline not among its runs.
 */
export async function readScheduleDrift(
  source: DriftSource,
  schedule: string,
  options: { readonly baseline?: string; readonly limit?: number; readonly threshold?: number } = {},
): Promise<DriftReport> {
  const runs = (await source.list({ limit: DRIFT_JOBS_SCANNED })).filter((j) => j.scheduleName === schedule);
  if (runs.length === 0) {
    if (await source.scheduleExists(schedule)) {
      throw new LabelerError(CODE.schedule.noFinishedRun, `schedule ${schedule} has not started a job yet`);
    }
    throw new LabelerError(
      CODE.schedule.notFound,
      `no schedule named ${schedule}, nor any job started by one`,
    );
  }
  const wanted = options.baseline ?? (await source.scheduleBaseline?.(schedule));
  let baseline: Job | undefined;
  if (wanted !== undefined) {
    baseline = runs.find((j) => j.jobId === wanted);
    if (!baseline && options.baseline !== undefined) {
      throw new LabelerError(
        CODE.schedule.baselineNotARun,
        `job ${wanted} is not a run of schedule ${schedule} (its runs: ${runs
          .slice(0, 5)
          .map((j) => j.jobId)
          .join(', ')}${runs.length > 5 ? ', ...' : ''})`,
      );
    }
  }
  baseline ??= firstFinishedRun(runs);
  if (!baseline) {
    throw new LabelerError(
      CODE.schedule.noFinishedRun,
      `no run of schedule ${schedule} has finished with labels yet (${runs.length} run${runs.length === 1 ? '' : 's'}, ` +
        `${runs.filter((j) => !TERMINAL_STATUSES.has(j.status)).length} still running)`,
    );
  }
  if (!baseline.labelSummary) {
    throw new LabelerError(
      CODE.schedule.noFinishedRun,
      `job ${baseline.jobId} is ${baseline.status} without a label summary: a baseline is a run that finished with labels`,
    );
  }
  return driftReport(schedule, runs, baseline, {
    threshold: options.threshold ?? DRIFT.threshold,
    ...(options.limit === undefined ? {} : { limit: options.limit }),
  });
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** `--format table`: one line per run, then the labels that moved most. */
export function formatDriftTable(report: DriftReport, shifts = 3): string {
  const lines = [
    `schedule ${report.schedule}: ${report.runs.length} run${report.runs.length === 1 ? '' : 's'} against baseline ${report.baselineJobId}, threshold ${report.threshold}`,
    [
      'run',
      'created',
      'status',
      'images',
      'mean top-1',
      'top-1 < 0.5',
      'divergence',
      'labels that moved (baseline → run)',
    ].join('\t'),
  ];
  for (const run of report.runs) {
    const moved = run.labels
      .filter((l) => l.run !== l.baseline)
      .slice(0, shifts)
      .map((l) => `${l.label} ${pct(l.baseline)} → ${pct(l.run)}`)
      .join(', ');
    lines.push(
      [
        `${run.jobId}${run.baseline ? ' (baseline)' : ''}`,
        run.createdAt,
        run.status,
        String(run.images),
        run.meanTop1Score === undefined ? '-' : run.meanTop1Score.toFixed(3),
        run.shareUnderHalf === undefined ? '-' : pct(run.shareUnderHalf),
        run.divergence === undefined
          ? '-'
          : `${run.divergence.toFixed(4)}${run.overThreshold ? ' OVER' : ''}`,
        moved || '-',
      ].join('\t'),
    );
  }
  return lines.join('\n');
}
