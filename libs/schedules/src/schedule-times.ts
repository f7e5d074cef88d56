import { Cron } from 'croner';

/**
 * The pure side of schedules: what a cron expression means in a time zone, when a schedule is
 * next due, which tick (if any) a gateway should store now, and the ids a tick goes by. Every
 * function takes `now`, so the tests need no fake clock.
 */

/** What a schedule's timing is made of (the rest of a schedule does not matter here). */
export interface Timing {
  cron: string;
  /** An IANA zone (`Europe/Berlin`); UTC when absent. */
  timezone?: string;
  /** When this timing took effect (ISO): the schedule's creation, or the change of its cron or zone. No tick is due before it. */
  since: string;
}

/** Undefined when `zone` is an IANA time zone this runtime knows; otherwise why not. */
export function timeZoneError(zone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return undefined;
  } catch {
    return `timezone "${zone}" is not an IANA time zone (e.g. "UTC", "Europe/Berlin", "America/New_York")`;
  }
}

/**
 * Undefined when `cron` is a cron expression Conveyor takes: 5 fields (minute hour day month
 * weekday) or 6 with seconds first; otherwise why not.
 */
export function cronError(cron: string, timezone?: string): string | undefined {
  if (timezone !== undefined) {
    const bad = timeZoneError(timezone);
    if (bad) return bad;
  }
  const fields = cron.trim().split(/\s+/).filter(Boolean).length;
  if (!cron.trim().startsWith('@') && fields !== 5 && fields !== 6) {
    return `cron "${cron}" has ${fields} field(s); use 5 (minute hour day-of-month month day-of-week) or 6 (second first)`;
  }
  try {
    const c = cronOf(cron, timezone);
    if (!c.nextRun(new Date(0))) return `cron "${cron}" is never due`;
    return undefined;
  } catch (err) {
    return `cron "${cron}" is not valid: ${(err as Error).message}`;
  }
}

function cronOf(cron: string, timezone?: string): Cron {
  // No function given: croner keeps no timer; it only computes times.
  return new Cron(cron.trim(), { timezone: timezone ?? 'UTC', mode: '5-or-6-parts', paused: true });
}

/** The first due time strictly after `now`; undefined when there is none. */
export function nextDue(t: Pick<Timing, 'cron' | 'timezone'>, now: Date): Date | undefined {
  return cronOf(t.cron, t.timezone).nextRun(now) ?? undefined;
}

/** The most recent due time at or before `now`; undefined when there is none. */
export function lastDue(t: Pick<Timing, 'cron' | 'timezone'>, now: Date): Date | undefined {
  // croner's previous runs are before the reference, and include one earlier in the same second:
  // a millisecond on, a due time exactly at `now` counts; one in the next second is dropped.
  const runs = cronOf(t.cron, t.timezone).previousRuns(2, new Date(now.getTime() + 1));
  return runs.find((r) => r.getTime() <= now.getTime());
}

/** A tick to store now: its due time, and whether due times between the last tick and it were missed (it stands in for them). */
export interface TickPlan {
  at: Date;
  catchUp: boolean;
}

/**
 * The tick a gateway stores now, if any: the most recent due time, when it is after the last
 * tick stored (and after the timing took effect). So a timer firing on time stores that
 * time's tick; a gateway that starts after downtime (or a timer that fires late) stores one
 * tick for the most recent due time only, however many were missed; a tick already stored (by
 * this gateway or another) is never planned again; and a gateway whose clock is behind the
 * one that stored the last tick plans nothing until its clock passes the next due time.
 */
export function planTick(t: Timing, lastTickAt: Date | undefined, now: Date): TickPlan | undefined {
  const due = lastDue(t, now);
  if (!due) return undefined;
  const since = Date.parse(t.since);
  if (due.getTime() < since) return undefined;
  if (lastTickAt && due.getTime() <= lastTickAt.getTime()) return undefined;
  const floor = Math.max(since, lastTickAt?.getTime() ?? -Infinity);
  // Was another due time skipped between the floor and this one?
  const first = nextDue(t, new Date(floor));
  return { at: due, catchUp: !!first && first.getTime() < due.getTime() };
}

/** How long to wait before looking again: to the next due time, at most `maxMs` (a clock that jumps, a timer's limit). */
export function delayToNext(t: Pick<Timing, 'cron' | 'timezone'>, now: Date, maxMs: number): number {
  const next = nextDue(t, now);
  if (!next) return maxMs;
  return Math.max(1, Math.min(maxMs, next.getTime() - now.getTime()));
}

/** A tick's id (its message id on the ticks stream, and what a run's resource records): `<schedule>:<ISO time>`. */
export function tickId(schedule: string, at: Date): string {
  return `${schedule}:${at.toISOString()}`;
}

/** The KV key under which a tick's run id is recorded (KV keys take no `:`). */
export function tickKey(schedule: string, at: Date): string {
  return `${schedule}.${at.getTime()}`;
}
