import { Cron } from 'croner';
import { CODE } from '../error-codes.ts';
import { LabelerError } from '../errors.ts';
import type { JobMode, JobRequest, JobTarget } from './jobs.ts';
import { DEFAULT_SAMPLE_SEED, parseSample, type SampleSpec } from './sample.ts';

/** A recurring labeling job: the same declaration in cdk.json, `jobs schedule add` and the local stack. */
export interface ScheduleSpec {
  readonly name: string;
  /** EventBridge Scheduler syntax: `cron(min hour day-of-month month day-of-week year)` or `rate(n unit)`. */
  readonly expression: string;
  /** IANA zone the cron fields are read in. @default 'UTC' */
  readonly timezone?: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly target: JobTarget;
  readonly mode: JobMode;
  /** Each firing's job labels this deterministic sample of the prefix (decision 0036). */
  readonly sample?: SampleSpec;
  /** The hosted model each firing's job labels with (JobRequest.model); absent: the stack's default. */
  readonly model?: string;
}

/** Where schedules live: EventBridge Scheduler on AWS, a table of the local stack on this machine. */
export interface SchedulesPort {
  add(schedule: ScheduleSpec): Promise<void>;
  list(): Promise<ScheduleSpec[]>;
  remove(name: string): Promise<void>;
}

export type ScheduleExpression =
  | { readonly kind: 'cron'; readonly pattern: string }
  | { readonly kind: 'rate'; readonly everyMs: number };

export class ScheduleError extends LabelerError {
  constructor(message: string) {
    super(CODE.schedule.invalid, message);
  }
}

/** EventBridge Scheduler's own rule for schedule names. */
const NAME = /^[0-9A-Za-z_.-]{1,64}$/;

const RATE_UNITS: Readonly<Record<string, number>> = {
  minute: 60_000,
  minutes: 60_000,
  hour: 3_600_000,
  hours: 3_600_000,
  day: 86_400_000,
  days: 86_400_000,
};

/**
 * Parses an EventBridge Scheduler expression. `cron(...)` becomes a croner pattern:
 * EventBridge has six fields (no seconds, a year last), numbers days of the week 1-7
 * from Sunday (croner's "alternative weekdays") and needs `?` in exactly one of the two
 * day fields, which means "no constraint" (`*`); croner reads a bare `?` as "the value
 * now", so it is replaced before croner sees it.
 */
export function parseScheduleExpression(expression: string): ScheduleExpression {
  const text = expression.trim();
  const rate = /^rate\((.*)\)$/.exec(text);
  if (rate) return { kind: 'rate', everyMs: parseRate(rate[1] as string) };
  const cron = /^cron\((.*)\)$/.exec(text);
  if (cron) return { kind: 'cron', pattern: toCronerPattern(cron[1] as string) };
  if (text.startsWith('at(')) {
    throw new ScheduleError(`one-time schedules ("${text}") are not supported; use cron(...) or rate(...)`);
  }
  throw new ScheduleError(`"${expression}" is neither cron(...) nor rate(...)`);
}

function parseRate(body: string): number {
  const match = /^\s*(\d+)\s+([a-z]+)\s*$/.exec(body);
  const unit = match ? RATE_UNITS[match[2] as string] : undefined;
  if (!match || unit === undefined) {
    throw new ScheduleError(`rate(${body}): expected rate(<n> minute|minutes|hour|hours|day|days)`);
  }
  const value = Number(match[1]);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new ScheduleError(`rate(${body}): <n> must be at least 1`);
  // EventBridge refuses "rate(1 minutes)" and "rate(5 minute)"; refuse them here too.
  const singular = !(match[2] as string).endsWith('s');
  if (singular !== (value === 1)) {
    throw new ScheduleError(`rate(${body}): use the singular unit for 1 and the plural otherwise`);
  }
  return value * unit;
}

/** `cron(min hour dom month dow year)` body -> croner's 7-part pattern (seconds first). */
export function toCronerPattern(body: string): string {
  const fields = body.trim().split(/\s+/);
  if (fields.length !== 6) {
    throw new ScheduleError(
      `cron(${body}) has ${fields.length} fields; EventBridge cron has 6: minutes hours day-of-month month day-of-week year`,
    );
  }
  const [minutes, hours, dayOfMonth, month, dayOfWeek, year] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if ((dayOfMonth === '?') === (dayOfWeek === '?')) {
    throw new ScheduleError(`cron(${body}): exactly one of day-of-month and day-of-week must be "?"`);
  }
  if ([minutes, hours, month, year].includes('?')) {
    throw new ScheduleError(`cron(${body}): "?" is only allowed in the day fields`);
  }
  const star = (field: string) => (field === '?' ? '*' : field);
  const pattern = ['0', minutes, hours, star(dayOfMonth), month, star(dayOfWeek), year].join(' ');
  try {
    cronFor(pattern, 'UTC');
  } catch (error) {
    throw new ScheduleError(`cron(${body}): ${(error as Error).message}`);
  }
  return pattern;
}

function cronFor(pattern: string, timezone: string): Cron {
  return new Cron(pattern, {
    mode: '7-part',
    alternativeWeekdays: true,
    // With one day field "*", AND leaves the other as the only constraint, as EventBridge does.
    domAndDow: true,
    sloppyRanges: true,
    paused: true,
    timezone,
  });
}

/**
 * The first firing strictly after `after`. A rate schedule fires every period counted
 * from `anchor` (when it was created), as EventBridge Scheduler does without a start date.
 */
export function nextFiring(
  expression: ScheduleExpression,
  after: Date,
  options: { readonly anchor: Date; readonly timezone?: string },
): Date | undefined {
  if (expression.kind === 'rate') {
    const elapsed = after.getTime() - options.anchor.getTime();
    const periods = elapsed < 0 ? 1 : Math.floor(elapsed / expression.everyMs) + 1;
    return new Date(options.anchor.getTime() + periods * expression.everyMs);
  }
  return cronFor(expression.pattern, options.timezone ?? 'UTC').nextRun(after) ?? undefined;
}

/** Same schedule, same firing => same job: JobsService.start dedupes on this key. */
export function scheduleIdempotencyKey(name: string, scheduledTime: Date): string {
  return `${name}@${scheduledTime.toISOString()}`;
}

/** Checks a schedule declared by a person (CLI flags, cdk.json) and fills the defaults. */
export function validateSchedule(input: {
  name?: unknown;
  expression?: unknown;
  timezone?: unknown;
  bucket?: unknown;
  prefix?: unknown;
  target?: unknown;
  mode?: unknown;
  sample?: unknown;
  model?: unknown;
}): ScheduleSpec {
  const {
    name,
    expression,
    timezone,
    bucket,
    prefix,
    target = 'lambda',
    mode = 'stale',
    sample,
    model,
  } = input;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new ScheduleError(
      `schedule name ${JSON.stringify(name)} must be 1-64 letters, digits, ".", "_" or "-"`,
    );
  }
  if (typeof expression !== 'string') throw new ScheduleError(`schedule ${name}: expression is required`);
  const parsed = parseScheduleExpression(expression);
  if (timezone !== undefined) {
    if (typeof timezone !== 'string' || !isTimeZone(timezone)) {
      throw new ScheduleError(`schedule ${name}: unknown time zone ${JSON.stringify(timezone)}`);
    }
  }
  // "cron(0 2 31 2 ? *)" (31 February) or a year gone by parses but never fires: refuse it
  // rather than keep a schedule that silently does nothing.
  const now = new Date();
  if (
    nextFiring(parsed, now, {
      anchor: now,
      ...(typeof timezone === 'string' ? { timezone } : {}),
    }) === undefined
  ) {
    throw new ScheduleError(
      `schedule ${name}: ${expression.trim()} never fires (no such date from now on); check the day, month and year fields`,
    );
  }
  if (typeof bucket !== 'string' || bucket.length < 3) {
    throw new ScheduleError(`schedule ${name}: bucket is required`);
  }
  if (typeof prefix !== 'string') throw new ScheduleError(`schedule ${name}: prefix is required`);
  if (target !== 'lambda' && target !== 'gpu') {
    throw new ScheduleError(`schedule ${name}: target must be lambda or gpu, got ${JSON.stringify(target)}`);
  }
  if (mode !== 'all' && mode !== 'stale') {
    throw new ScheduleError(`schedule ${name}: mode must be all or stale, got ${JSON.stringify(mode)}`);
  }
  if (model !== undefined && (typeof model !== 'string' || model.trim() === '' || model.length > 256)) {
    throw new ScheduleError(`schedule ${name}: model must be a hosted model's name, id or id@version`);
  }
  return {
    name,
    expression: expression.trim(),
    ...(timezone === undefined ? {} : { timezone: timezone as string }),
    bucket,
    prefix,
    target,
    mode,
    ...(sample === undefined ? {} : { sample: scheduleSample(name, sample) }),
    ...(model === undefined ? {} : { model: (model as string).trim() }),
  };
}

/**
 * A schedule's sample: `{count|percent, seed}` as stored, or 50 / "5%" as cdk.json may
 * write it; checked by the same rules as `jobs start --sample` (job/invalid-sample).
 */
function scheduleSample(name: string, sample: unknown): SampleSpec {
  if (typeof sample === 'string' || typeof sample === 'number') return parseSample(String(sample));
  if (typeof sample === 'object' && sample !== null) {
    const { count, percent, seed = DEFAULT_SAMPLE_SEED } = sample as Record<string, unknown>;
    const size = count !== undefined ? String(count) : percent !== undefined ? `${String(percent)}%` : '';
    if (
      size !== '' &&
      (typeof count === 'number' || typeof percent === 'number') &&
      typeof seed === 'number'
    ) {
      return parseSample(size, String(seed));
    }
  }
  throw new ScheduleError(
    `schedule ${name}: sample must be a number of objects or a percentage (e.g. 50 or 5%)`,
  );
}

/** The job a firing starts: same schedule and time, same idempotency key, so the same job. */
export function scheduledJobRequest(
  schedule: ScheduleSpec,
  scheduledTime: string,
): JobRequest & { readonly idempotencyKey: string; readonly scheduleName: string } {
  return {
    bucket: schedule.bucket,
    prefix: schedule.prefix,
    target: schedule.target,
    mode: schedule.mode,
    scheduleName: schedule.name,
    idempotencyKey: `${schedule.name}@${scheduledTime}`,
    ...(schedule.sample ? { sample: schedule.sample } : {}),
    ...(schedule.model ? { model: schedule.model } : {}),
  };
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/**
 * The plan-queue message a firing sends (the contract's `start` body). On AWS the
 * Scheduler fills `<aws.scheduler.scheduled-time>` in; locally the firing time goes in.
 */
export function scheduleStartMessage(schedule: ScheduleSpec, scheduledTime: string) {
  return { kind: 'start', request: scheduledJobRequest(schedule, scheduledTime) } as const;
}

/**
 * How EventBridge Scheduler delivers each firing to the plan queue, for schedules from
 * cdk.json (infra) and from `labeler jobs schedule add` (shared/aws/schedules-scheduler.ts) alike.
 */
export const SCHEDULE_DELIVERY = {
  /** Firings spread over this window so schedules declared for the same minute do not start at once. */
  flexibleWindowMinutes: 5,
  retryAttempts: 10,
  /** A firing not delivered within this age goes to the plan dead-letter queue. */
  maxEventAgeSeconds: 3600,
} as const;

/** The Scheduler context attribute replaced by each firing's scheduled time. */
export const SCHEDULED_TIME_PLACEHOLDER = '<aws.scheduler.scheduled-time>';
