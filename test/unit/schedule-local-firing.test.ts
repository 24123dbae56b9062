import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalScheduler } from '../../local/scheduler.ts';
import type { StoredSchedule } from '../../shared/aws/schedules-local.ts';
import type { JobRequest } from '../../shared/labeling/jobs.ts';
import type { ScheduleSpec } from '../../shared/labeling/schedules.ts';

/** A test clock: time moves only when the test says so. */
function testClock(iso: string) {
  let now = new Date(iso).getTime();
  return {
    now: () => new Date(now),
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** The schedules port in memory (the DynamoDB-backed one is exercised by the local stack tests). */
function memoryStore(now: () => Date) {
  const items = new Map<string, StoredSchedule>();
  return {
    add: async (s: ScheduleSpec) => void items.set(s.name, { ...s, createdAt: now().toISOString() }),
    list: async () => [...items.values()],
    remove: async (name: string) => void items.delete(name),
  };
}

function recordingJobs(failFirst = 0) {
  const keys: string[] = [];
  const requests: JobRequest[] = [];
  let failures = failFirst;
  return {
    keys,
    requests,
    start: async (request: JobRequest & { idempotencyKey: string }) => {
      if (failures-- > 0) throw new Error('plan queue unavailable (injected)');
      keys.push(request.idempotencyKey);
      requests.push(request);
      return { jobId: `job-${keys.length}` };
    },
  };
}

const spec = (name: string, expression: string): ScheduleSpec => ({
  name,
  expression,
  bucket: 'labeler-images',
  prefix: 'datasets/',
  target: 'lambda',
  mode: 'stale',
});

describe('local scheduler with a test clock', () => {
  it('fires rate(1 minute) once per minute after creation, keyed by the scheduled time', async () => {
    const clock = testClock('2026-11-28T10:00:30Z');
    const jobs = recordingJobs();
    const scheduler = new LocalScheduler({ store: memoryStore(clock.now), jobs, now: clock.now, pollMs: 0 });
    await scheduler.add(spec('every-minute', 'rate(1 minute)'));
    assert.deepEqual(await scheduler.tick(), []);
    clock.advance(59_000);
    assert.deepEqual(await scheduler.tick(), []);
    clock.advance(1_000);
    assert.deepEqual(await scheduler.tick(), [
      { name: 'every-minute', scheduledTime: '2026-11-28T10:01:30.000Z', jobId: 'job-1' },
    ]);
    assert.deepEqual(await scheduler.tick(), [], 'a second tick at the same time starts nothing');
    clock.advance(60_000);
    await scheduler.tick();
    assert.deepEqual(jobs.keys, [
      'every-minute@2026-11-28T10:01:30.000Z',
      'every-minute@2026-11-28T10:02:30.000Z',
    ]);
  });

  it('coalesces firings missed across a long gap into the latest one', async () => {
    const clock = testClock('2026-11-28T10:00:00Z');
    const jobs = recordingJobs();
    const scheduler = new LocalScheduler({ store: memoryStore(clock.now), jobs, now: clock.now, pollMs: 0 });
    await scheduler.add(spec('every-minute', 'rate(1 minute)'));
    clock.advance(10 * 60_000 + 5_000);
    await scheduler.tick();
    assert.deepEqual(jobs.keys, ['every-minute@2026-11-28T10:10:00.000Z']);
  });

  it('starts each firing’s job with the schedule’s sample and model', async () => {
    const clock = testClock('2026-11-28T10:00:00Z');
    const jobs = recordingJobs();
    const scheduler = new LocalScheduler({ store: memoryStore(clock.now), jobs, now: clock.now, pollMs: 0 });
    await scheduler.add({
      ...spec('sampled', 'rate(1 minute)'),
      sample: { count: 50, seed: 3 },
      model: 'fashion',
    });
    clock.advance(60_000);
    await scheduler.tick();
    assert.deepEqual(
      jobs.requests.map((r) => [r.sample, r.model, r.scheduleName]),
      [[{ count: 50, seed: 3 }, 'fashion', 'sampled']],
    );
  });

  it('fires a cron schedule at its wall-clock minute', async () => {
    const clock = testClock('2026-11-28T01:59:00Z');
    const jobs = recordingJobs();
    const scheduler = new LocalScheduler({ store: memoryStore(clock.now), jobs, now: clock.now, pollMs: 0 });
    await scheduler.add(spec('nightly', 'cron(0 2 * * ? *)'));
    clock.advance(30_000);
    await scheduler.tick();
    assert.deepEqual(jobs.keys, []);
    clock.advance(30_000);
    await scheduler.tick();
    assert.deepEqual(jobs.keys, ['nightly@2026-11-28T02:00:00.000Z']);
  });

  it('retries a firing whose job did not start, under the same key (injected failure)', async () => {
    const clock = testClock('2026-11-28T10:00:00Z');
    const jobs = recordingJobs(1);
    const scheduler = new LocalScheduler({ store: memoryStore(clock.now), jobs, now: clock.now, pollMs: 0 });
    await scheduler.add(spec('every-minute', 'rate(1 minute)'));
    clock.advance(60_000);
    assert.deepEqual(await scheduler.tick(), []);
    clock.advance(5_000);
    await scheduler.tick();
    assert.deepEqual(jobs.keys, ['every-minute@2026-11-28T10:01:00.000Z']);
  });

  it('stops firing a removed schedule', async () => {
    const clock = testClock('2026-11-28T10:00:00Z');
    const jobs = recordingJobs();
    const scheduler = new LocalScheduler({ store: memoryStore(clock.now), jobs, now: clock.now, pollMs: 0 });
    await scheduler.add(spec('every-minute', 'rate(1 minute)'));
    await scheduler.remove('every-minute');
    clock.advance(120_000);
    assert.deepEqual(await scheduler.tick(), []);
  });
});
