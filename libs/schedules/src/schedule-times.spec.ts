import { cronError, delayToNext, lastDue, nextDue, planTick, tickId, tickKey, timeZoneError } from './schedule-times';

const at = (iso: string) => new Date(iso);

describe('schedule times', () => {
  it('takes 5-field and 6-field (seconds first) cron, and refuses the rest with the reason', () => {
    expect(cronError('*/5 * * * *')).toBeUndefined();
    expect(cronError('* * * * * *')).toBeUndefined();
    expect(cronError('0 9 * * 1-5', 'Europe/Berlin')).toBeUndefined();
    expect(cronError('* * * *')).toMatch(/4 field\(s\); use 5/);
    expect(cronError('* * * * * * *')).toMatch(/7 field\(s\)/);
    expect(cronError('61 * * * *')).toMatch(/^cron "61 \* \* \* \*" is not valid: /);
    expect(cronError('every minute')).toMatch(/2 field/);
    expect(cronError('0 0 30 2 *')).toMatch(/never due|not valid/);
    expect(cronError('* * * * *', 'Mars/Olympus')).toMatch(/timezone "Mars\/Olympus" is not an IANA time zone/);
  });

  it('knows IANA zones', () => {
    expect(timeZoneError('UTC')).toBeUndefined();
    expect(timeZoneError('America/New_York')).toBeUndefined();
    expect(timeZoneError('Nowhere/Land')).toMatch(/not an IANA/);
  });

  it('computes the next and the last due time, in the schedule zone', () => {
    const berlin9 = { cron: '0 9 * * *', timezone: 'Europe/Berlin' };
    // 09:00 in Berlin is 08:00 UTC in winter, 07:00 UTC in summer.
    expect(nextDue(berlin9, at('2026-01-10T12:00:00Z'))).toEqual(at('2026-01-11T08:00:00Z'));
    expect(nextDue(berlin9, at('2026-07-10T12:00:00Z'))).toEqual(at('2026-07-11T07:00:00Z'));
    expect(lastDue(berlin9, at('2026-01-10T12:00:00Z'))).toEqual(at('2026-01-10T08:00:00Z'));
    expect(nextDue({ cron: '* * * * * *' }, at('2026-01-10T12:00:00.300Z'))).toEqual(at('2026-01-10T12:00:01Z'));
    expect(nextDue({ cron: '* * * * * *' }, at('2026-01-10T12:00:00.000Z'))).toEqual(at('2026-01-10T12:00:01Z'));
    expect(lastDue({ cron: '* * * * * *' }, at('2026-01-10T12:00:00.300Z'))).toEqual(at('2026-01-10T12:00:00Z'));
    expect(lastDue({ cron: '*/10 * * * *' }, at('2026-01-10T12:34:00Z'))).toEqual(at('2026-01-10T12:30:00Z'));
  });

  it('crosses DST as croner does: a fixed time once (after a gap, at its end), a stepped time in both copies of a repeated hour', () => {
    const fixed = { cron: '30 2 * * *', timezone: 'Europe/Berlin' };
    const series = (t: { cron: string; timezone: string }, from: string, n: number) => {
      const out: string[] = [];
      for (let d: Date | undefined = at(from), i = 0; d && i < n; i++) out.push((d = nextDue(t, d))!.toISOString());
      return out;
    };
    // 2026-03-29 02:30 does not exist in Berlin: 03:00 CEST instead.
    expect(series(fixed, '2026-03-28T12:00:00Z', 1)).toEqual(['2026-03-29T01:00:00.000Z']);
    // 2026-10-25 02:30 happens twice: once.
    expect(series(fixed, '2026-10-24T12:00:00Z', 2)).toEqual(['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
    const stepped = { cron: '*/30 * * * *', timezone: 'Europe/Berlin' };
    expect(series(stepped, '2026-10-24T23:50:00Z', 4)).toEqual(['2026-10-25T00:00:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T01:30:00.000Z']);
    expect(series(stepped, '2026-03-29T00:20:00Z', 2)).toEqual(['2026-03-29T00:30:00.000Z', '2026-03-29T01:00:00.000Z']);
  });

  it('plans the tick of a timer that fires on time, once', () => {
    const t = { cron: '* * * * * *', since: '2026-01-10T12:00:00.500Z' };
    expect(planTick(t, undefined, at('2026-01-10T12:00:00.900Z'))).toBeUndefined(); // due 12:00:00 is before the schedule
    expect(planTick(t, undefined, at('2026-01-10T12:00:01.002Z'))).toEqual({ at: at('2026-01-10T12:00:01Z'), catchUp: false });
    expect(planTick(t, at('2026-01-10T12:00:01Z'), at('2026-01-10T12:00:01.500Z'))).toBeUndefined(); // stored already
    expect(planTick(t, at('2026-01-10T12:00:01Z'), at('2026-01-10T12:00:02.001Z'))).toEqual({ at: at('2026-01-10T12:00:02Z'), catchUp: false });
  });

  it('plans one catch-up tick for the most recent due time after downtime, however many were missed', () => {
    const t = { cron: '* * * * * *', since: '2026-01-10T12:00:00Z' };
    expect(planTick(t, at('2026-01-10T12:00:05Z'), at('2026-01-10T12:00:09.400Z'))).toEqual({ at: at('2026-01-10T12:00:09Z'), catchUp: true });
    const hourly = { cron: '0 * * * *', since: '2026-01-01T00:00:00Z' };
    expect(planTick(hourly, at('2026-01-10T08:00:00Z'), at('2026-01-12T10:20:00Z'))).toEqual({ at: at('2026-01-12T10:00:00Z'), catchUp: true });
    // A gateway whose clock is behind the one that stored the last tick plans nothing.
    expect(planTick(hourly, at('2026-01-12T10:00:00Z'), at('2026-01-12T09:59:59.900Z'))).toBeUndefined();
  });

  it('does not fire for a due time before a changed cron took effect', () => {
    const t = { cron: '*/10 * * * *', since: '2026-01-10T12:34:00Z' };
    expect(planTick(t, at('2026-01-10T11:00:00Z'), at('2026-01-10T12:35:00Z'))).toBeUndefined();
    expect(planTick(t, at('2026-01-10T11:00:00Z'), at('2026-01-10T12:40:00Z'))).toEqual({ at: at('2026-01-10T12:40:00Z'), catchUp: false });
  });

  it('waits until the next due time, bounded', () => {
    expect(delayToNext({ cron: '* * * * * *' }, at('2026-01-10T12:00:00.250Z'), 60_000)).toBe(750);
    expect(delayToNext({ cron: '0 0 1 1 *' }, at('2026-01-10T12:00:00Z'), 60_000)).toBe(60_000);
  });

  it('names ticks by schedule and time', () => {
    expect(tickId('nightly', at('2026-01-10T12:00:00Z'))).toBe('nightly:2026-01-10T12:00:00.000Z');
    expect(tickKey('nightly', at('2026-01-10T12:00:00Z'))).toBe(`nightly.${Date.parse('2026-01-10T12:00:00Z')}`);
  });
});
