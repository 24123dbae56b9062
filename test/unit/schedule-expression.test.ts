import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  nextFiring,
  parseScheduleExpression,
  ScheduleError,
  scheduleIdempotencyKey,
  scheduleStartMessage,
  toCronerPattern,
  validateSchedule,
} from '../../shared/labeling/schedules.ts';

const at = (iso: string) => new Date(iso);
const anchor = at('2026-01-01T00:00:00Z');

describe('EventBridge cron -> croner', () => {
  it('adds the seconds field and turns "?" into "*"', () => {
    assert.equal(toCronerPattern('0 12 ? * MON-FRI *'), '0 0 12 * * MON-FRI *');
    assert.equal(toCronerPattern('15 10 1 * ? 2027'), '0 15 10 1 * * 2027');
  });

  it('numbers days of the week from Sunday = 1, as EventBridge does', () => {
    // 2026-11-28 is a Saturday; day 2 is Monday in EventBridge (Tuesday in Vixie cron).
    const expression = parseScheduleExpression('cron(0 12 ? * 2 *)');
    assert.equal(
      nextFiring(expression, at('2026-11-28T00:00:00Z'), { anchor })?.toISOString(),
      '2026-11-30T12:00:00.000Z',
    );
  });

  it('fires on the day of month alone when day-of-week is "?"', () => {
    const expression = parseScheduleExpression('cron(30 2 15 * ? *)');
    assert.equal(
      nextFiring(expression, at('2026-11-28T00:00:00Z'), { anchor })?.toISOString(),
      '2026-12-15T02:30:00.000Z',
    );
  });

  it('accepts steps written as start/step and the L of the last day', () => {
    const every15 = parseScheduleExpression('cron(0/15 * * * ? *)');
    assert.equal(
      nextFiring(every15, at('2026-11-28T10:07:00Z'), { anchor })?.toISOString(),
      '2026-11-28T10:15:00.000Z',
    );
    const lastDay = parseScheduleExpression('cron(0 0 L * ? *)');
    assert.equal(
      nextFiring(lastDay, at('2026-11-28T10:07:00Z'), { anchor })?.toISOString(),
      '2026-11-30T00:00:00.000Z',
    );
  });

  it('reads the fields in the schedule time zone', () => {
    const expression = parseScheduleExpression('cron(0 9 * * ? *)');
    const next = nextFiring(expression, at('2026-11-28T00:00:00Z'), { anchor, timezone: 'Europe/Paris' });
    assert.equal(next?.toISOString(), '2026-11-28T08:00:00.000Z');
  });

  it('has no next firing once the year field is past', () => {
    const expression = parseScheduleExpression('cron(0 0 1 1 ? 2020)');
    assert.equal(nextFiring(expression, at('2026-11-28T00:00:00Z'), { anchor }), undefined);
  });

  for (const [body, why] of [
    ['0 12 * * *', /has \d fields/],
    ['0 12 * * * * *', /has \d fields/],
    ['0 12 * * MON *', /exactly one of day-of-month and day-of-week/],
    ['0 12 ? * ? *', /exactly one of day-of-month and day-of-week/],
    ['? 12 * * ? *', /only allowed in the day fields/],
    ['0 25 * * ? *', /hour/],
    ['61 1 * * ? *', /minute/],
  ] as const) {
    it(`refuses cron(${body})`, () => {
      assert.throws(
        () => parseScheduleExpression(`cron(${body})`),
        (error: unknown) =>
          error instanceof ScheduleError && error.code === 'schedule/invalid' && why.test(error.message),
      );
    });
  }
});

describe('rate expressions', () => {
  it('parses each unit', () => {
    assert.deepEqual(parseScheduleExpression('rate(1 minute)'), { kind: 'rate', everyMs: 60_000 });
    assert.deepEqual(parseScheduleExpression('rate(5 minutes)'), { kind: 'rate', everyMs: 300_000 });
    assert.deepEqual(parseScheduleExpression('rate(2 hours)'), { kind: 'rate', everyMs: 7_200_000 });
    assert.deepEqual(parseScheduleExpression(' rate(1 day) '), { kind: 'rate', everyMs: 86_400_000 });
  });

  it('fires every period counted from the anchor', () => {
    const expression = parseScheduleExpression('rate(10 minutes)');
    const created = at('2026-11-28T10:03:20Z');
    assert.equal(
      nextFiring(expression, created, { anchor: created })?.toISOString(),
      '2026-11-28T10:13:20.000Z',
    );
    assert.equal(
      nextFiring(expression, at('2026-11-28T10:13:20Z'), { anchor: created })?.toISOString(),
      '2026-11-28T10:23:20.000Z',
    );
    assert.equal(
      nextFiring(expression, at('2026-11-28T10:00:00Z'), { anchor: created })?.toISOString(),
      '2026-11-28T10:13:20.000Z',
    );
  });

  for (const bad of [
    'rate(0 minutes)',
    'rate(1 minutes)',
    'rate(5 minute)',
    'rate(5 seconds)',
    'rate(five minutes)',
    'rate()',
    'at(2026-12-01T00:00:00)',
    'every 5 minutes',
    '',
  ]) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseScheduleExpression(bad), ScheduleError);
    });
  }
});

describe('schedule declarations', () => {
  const base = {
    name: 'nightly',
    expression: 'cron(0 2 * * ? *)',
    bucket: 'labeler-images',
    prefix: 'datasets/',
  };

  it('fills target lambda and mode stale', () => {
    assert.deepEqual(validateSchedule(base), { ...base, target: 'lambda', mode: 'stale' });
  });

  for (const [change, why] of [
    [{ name: 'has space' }, /name/],
    [{ name: 'x'.repeat(65) }, /name/],
    [{ expression: 'cron(0 2 * * *)' }, /fields/],
    [{ timezone: 'Mars/Olympus' }, /time zone/],
    [{ bucket: undefined }, /bucket/],
    [{ prefix: 3 }, /prefix/],
    [{ target: 'tpu' }, /target/],
    [{ mode: 'some' }, /mode/],
    // 31 February and a year gone by parse, but never fire.
    [{ expression: 'cron(0 2 31 2 ? *)' }, /never fires/],
    [{ expression: 'cron(0 2 30 2 ? *)' }, /never fires/],
    [{ expression: 'cron(0 2 1 1 ? 2020)' }, /never fires/],
  ] as const) {
    it(`refuses ${JSON.stringify(change)}`, () => {
      assert.throws(
        () => validateSchedule({ ...base, ...change }),
        (error: unknown) => error instanceof ScheduleError && why.test(error.message),
      );
    });
  }

  it('accepts a date that exists only in leap years (29 February)', () => {
    assert.equal(
      validateSchedule({ ...base, expression: 'cron(0 2 29 2 ? *)' }).expression,
      'cron(0 2 29 2 ? *)',
    );
  });

  it('starts a job keyed by the schedule and its scheduled time', () => {
    const spec = validateSchedule({ ...base, target: 'gpu', mode: 'all' });
    assert.equal(
      scheduleIdempotencyKey('nightly', at('2026-11-28T02:00:00Z')),
      'nightly@2026-11-28T02:00:00.000Z',
    );
    assert.deepEqual(scheduleStartMessage(spec, '2026-11-28T02:00:00.000Z'), {
      kind: 'start',
      request: {
        bucket: 'labeler-images',
        prefix: 'datasets/',
        target: 'gpu',
        mode: 'all',
        scheduleName: 'nightly',
        idempotencyKey: 'nightly@2026-11-28T02:00:00.000Z',
      },
    });
  });
});
