import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { JetStreamApiError } from '@nats-io/jetstream';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';
import type { Schedule, ScheduleTick } from '@conveyor/contracts';
import { JETSTREAM, isWrongLastSequence, type JetStreamContext } from '@conveyor/jetstream';
import { delayToNext, planTick, tickId } from '@conveyor/schedules';

/** A timer waits at most this long before looking again (a clock that jumped, a far due time). */
const MAX_WAIT_MS = 60_000;
/** After a failed look (NATS away), the next one comes this soon. */
const RETRY_MS = 1_000;

interface Timed {
  schedule: Schedule;
  timer?: NodeJS.Timeout;
  busy?: Promise<void>;
}

/**
 * Every gateway times every schedule (it watches the schedules bucket) and, at each due time,
 * stores the schedule's tick on `<prefix>.ticks.<schedule>`, fenced on the last tick it read
 * there (`Nats-Expected-Last-Subject-Sequence`) and with the message id `<schedule>:<time>`.
 * Exactly one gateway's tick is stored per due time; the others are refused (wrong last
 * sequence) or find it stored when they read. No leader: the NATS server decides the race, as
 * for runs' logs. Which tick to store, if any, is planTick's: the most recent due time when
 * it is after the last tick, so a gateway that starts after downtime (or fires late) stores
 * one catch-up tick, never one per missed time. The TickRunner starts the runs.
 */
@Injectable()
export class ScheduleTimers implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger(ScheduleTimers.name);
  private readonly timed = new Map<string, Timed>();
  private watch?: QueuedIterator<KvWatchEntry>;
  private watching?: Promise<void>;
  private stopped = false;

  constructor(
    @Inject(JETSTREAM) private readonly ctx: JetStreamContext,
    @Inject('SCHEDULES_KV') private readonly kv: KV,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // The watch gives every schedule stored, then each change; it resumes by itself after a NATS outage.
    this.watch = await this.kv.watch();
    this.watching = (async () => {
      for await (const e of this.watch!) {
        if (this.stopped) break;
        if (e.operation === 'PUT') this.arm(e.json<Schedule>());
        else this.disarm(e.key);
      }
    })().catch((err) => this.log.error(`schedules watch stopped: ${(err as Error).message}`));
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    this.watch?.stop();
    for (const t of this.timed.values()) clearTimeout(t.timer);
    await Promise.all([...this.timed.values()].map((t) => t.busy));
    await this.watching;
  }

  /** A schedule seen (at start-up, made or changed): look now (a catch-up tick may be due), then at its due times. */
  private arm(schedule: Schedule): void {
    const t = this.timed.get(schedule.name) ?? { schedule };
    t.schedule = schedule;
    this.timed.set(schedule.name, t);
    this.fire(schedule.name);
  }

  private disarm(name: string): void {
    const t = this.timed.get(name);
    if (t) clearTimeout(t.timer);
    this.timed.delete(name);
  }

  private fire(name: string): void {
    const t = this.timed.get(name);
    if (!t || this.stopped) return;
    clearTimeout(t.timer);
    // One look at a time per schedule; the one under way sets the next timer.
    if (t.busy) return;
    let failed = false;
    t.busy = this.tick(t.schedule)
      .catch((err) => {
        failed = true;
        this.log.warn(`schedule "${name}": could not store its tick: ${(err as Error).message}; looking again in ${RETRY_MS} ms`);
      })
      .finally(() => {
        t.busy = undefined;
        if (this.stopped || this.timed.get(name) !== t) return;
        const wait = failed ? RETRY_MS : delayToNext(t.schedule, new Date(), MAX_WAIT_MS);
        t.timer = setTimeout(() => this.fire(name), wait);
        t.timer.unref();
      });
  }

  /** Stores the tick planTick asks for, fenced on the schedule's last tick; refused when another gateway stored one first. */
  private async tick(s: Schedule): Promise<void> {
    const { subjects } = this.ctx;
    const subject = subjects.ticks(s.name);
    const last = await this.lastTick(subject);
    // The schedule's own record of its last tick counts too: the stream forgets ticks after CONVEYOR_TICKS_MAX_AGE.
    const lastAt = Math.max(last?.at ?? -Infinity, s.last ? Date.parse(s.last.at) : -Infinity);
    const plan = planTick(s, Number.isFinite(lastAt) ? new Date(lastAt) : undefined, new Date());
    if (!plan) return;
    const id = tickId(s.name, plan.at);
    const body: ScheduleTick = { v: 1, schedule: s.name, at: plan.at.toISOString(), tick: id, catchUp: plan.catchUp, by: this.ctx.config.agent.id };
    try {
      await this.ctx.js.publish(subject, JSON.stringify(body), { msgID: id, expect: { lastSubjectSequence: last?.seq ?? 0 } });
      if (plan.catchUp) this.log.log(`schedule "${s.name}": stored catch-up tick ${id} for the due times missed since the last tick`);
    } catch (err) {
      // Another gateway stored this due time's tick (or a later one) first.
      if (isWrongLastSequence(err)) return;
      throw err;
    }
  }

  private async lastTick(subject: string): Promise<{ seq: number; at: number } | undefined> {
    try {
      const m = await this.ctx.jsm.direct.getMessage(this.ctx.subjects.ticksStream, { last_by_subj: subject });
      if (!m) return undefined;
      const at = Date.parse((m.json<ScheduleTick>()).at);
      return { seq: m.seq, at: Number.isFinite(at) ? at : -Infinity };
    } catch (err) {
      if (err instanceof JetStreamApiError && (err.status === 404 || err.code === 10037)) return undefined;
      throw err;
    }
  }
}
