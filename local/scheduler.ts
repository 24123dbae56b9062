import type { StoredSchedule } from '../shared/aws/schedules-local.ts';
import { errorMessage } from '../shared/errors.ts';
import type { JobRequest } from '../shared/labeling/jobs.ts';
import {
  nextFiring,
  parseScheduleExpression,
  type ScheduleSpec,
  type SchedulesPort,
  scheduledJobRequest,
} from '../shared/labeling/schedules.ts';

/** What a firing calls: JobsService.start, narrowed to what a schedule passes. */
export interface JobStarter {
  start(request: JobRequest & { idempotencyKey: string; scheduleName: string }): Promise<{ jobId: string }>;
}

export interface Firing {
  readonly name: string;
  readonly scheduledTime: string;
  readonly jobId: string;
}

export interface LocalSchedulerOptions {
  readonly store: Omit<SchedulesPort, 'list'> & { list(): Promise<StoredSchedule[]> };
  readonly jobs: JobStarter;
  /** The scheduler's clock; tests pass one they move. @default () => new Date() */
  readonly now?: () => Date;
  /** How often `start` checks for due firings; 0 leaves ticking to the caller (tests). @default 5000 */
  readonly pollMs?: number;
  readonly log?: { warn(message: string, details?: Record<string, unknown>): void };
}

/**
 * EventBridge Scheduler on one machine: every tick, each schedule whose next firing is
 * due starts its job with the key `${name}@${scheduledTime}`, so a firing retried after
 * a failed start, or seen by two ticks, is still one job. Firings missed while the
 * stack was down (or across a long clock jump) are coalesced into the latest one:
 * a labeling job over a prefix covers everything the skipped ones would have.
 */
export class LocalScheduler implements SchedulesPort {
  readonly #options: LocalSchedulerOptions;
  readonly #now: () => Date;
  readonly #startedAt: Date;
  /** Per schedule, the instant up to which its firings are done. */
  readonly #checkedUpTo = new Map<string, Date>();
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<Firing[]> | undefined;

  constructor(options: LocalSchedulerOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
    this.#startedAt = this.#now();
  }

  add(schedule: ScheduleSpec): Promise<void> {
    return this.#options.store.add(schedule);
  }

  list(): Promise<ScheduleSpec[]> {
    return this.#options.store.list();
  }

  async remove(name: string): Promise<void> {
    await this.#options.store.remove(name);
    this.#checkedUpTo.delete(name);
  }

  start(): void {
    const pollMs = this.#options.pollMs ?? 5000;
    if (pollMs <= 0 || this.#timer) return;
    this.#timer = setInterval(() => {
      void this.tick().catch((error: unknown) =>
        this.#options.log?.warn('schedule check failed; next check retries', { error: errorMessage(error) }),
      );
    }, pollMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#ticking?.catch(() => undefined);
  }

  /** Starts the job of every schedule due by now; one tick at a time. */
  async tick(): Promise<Firing[]> {
    while (this.#ticking) await this.#ticking.catch(() => undefined);
    this.#ticking = this.#tick();
    try {
      return await this.#ticking;
    } finally {
      this.#ticking = undefined;
    }
  }

  async #tick(): Promise<Firing[]> {
    const now = this.#now();
    const fired: Firing[] = [];
    for (const schedule of await this.#options.store.list()) {
      const createdAt = new Date(schedule.createdAt);
      const from =
        this.#checkedUpTo.get(schedule.name) ??
        new Date(Math.max(this.#startedAt.getTime(), createdAt.getTime()));
      let due: Date | undefined;
      try {
        const expression = parseScheduleExpression(schedule.expression);
        const options = { anchor: createdAt, ...(schedule.timezone ? { timezone: schedule.timezone } : {}) };
        for (let next = nextFiring(expression, from, options); next && next <= now; ) {
          due = next;
          next = nextFiring(expression, next, options);
        }
      } catch (error) {
        this.#options.log?.warn('schedule has an invalid expression; skipped', {
          schedule: schedule.name,
          error: errorMessage(error),
        });
        continue;
      }
      if (due) {
        try {
          const job = await this.#options.jobs.start(scheduledJobRequest(schedule, due.toISOString()));
          fired.push({ name: schedule.name, scheduledTime: due.toISOString(), jobId: job.jobId });
        } catch (error) {
          // Not marked done: the next tick starts it again, under the same key.
          this.#options.log?.warn('scheduled job did not start; retrying on the next check', {
            schedule: schedule.name,
            error: errorMessage(error),
          });
          continue;
        }
      }
      this.#checkedUpTo.set(schedule.name, now);
    }
    return fired;
  }
}
