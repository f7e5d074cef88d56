import { Logger } from '@nestjs/common';
import { CustomTransportStrategy, Server, type MessageHandler } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { PULL_EXPIRES_MS, PULL_HEARTBEAT_MS, connectJetStream, drainPull, ensureWorkConsumer, isNotFound, provisionStreams, type JetStreamContext } from '@conveyor/jetstream';
import type { ConveyorConfig } from '@conveyor/config';

/**
 * What the transport hands every message to. The processor decides the message's fate
 * (ack, nak, term, in-progress); the transport only delivers and bounds concurrency.
 */
export interface MessageProcessor {
  /** Called once after connecting, before any message is delivered, with the patterns served. */
  init(ctx: JetStreamContext, patterns: string[]): Promise<void>;
  /**
   * `extras` are the handler's options (the second argument of `@EventPattern`). `fresh`: this is
   * the message's first delivery, it was stored after the consumer delivering it was made (both
   * on the server's clock), the connection has been steady for two ack waits, and (for two ack
   * waits after this process connected) it was stored after the process connected: so no consumer
   * delivered it before — unlike the kept messages a consumer an operator recreated delivers
   * again, or work a restarted nats-server forgot it had delivered.
   */
  process(msg: JsMsg, pattern: string, invoke: (payload: unknown) => Promise<unknown>, extras: Record<string, unknown>, fresh: boolean): Promise<void>;
  /** Called on shutdown while messages are still in flight: abort them so they can be handed back. */
  abortAll(reason: string): void;
  close(): Promise<void>;
}

export interface JetStreamServerOptions {
  config: ConveyorConfig;
  processor: MessageProcessor;
  /** How long shutdown waits for running messages before aborting them. */
  drainTimeoutMs?: number;
}

/** The shortest wait of a pull: one made just before an instant waits for the next. */
const PULL_MIN_MS = 1_000;
/** How long close() waits for drained pulls to end (a drain takes a round trip to the server). */
const DRAIN_PULLS_MS = 5_000;
/** How long after a pull expired the slots it held wait for others expiring at the same instant. */
const COALESCE_MS = 20;
/**
 * While a pull of a consumer still waits, slots that came free are pulled for once they are this
 * share of all slots: that pull delivers whatever comes first, so one more for each step that
 * ends would only make the server keep another request (one more message for every step).
 */
const REPULL_SHARE = 4;

/**
 * A NestJS transport on JetStream durable pull consumers. Nest's own NATS transport is
 * core NATS and cannot ack; this one never acks by itself: the processor does, after it
 * handed the work on. Each pattern (`@EventPattern('builder')`) is one durable consumer
 * shared by every copy of the app, so work spreads across copies. An app runs at most its
 * concurrency limit of a pattern's messages at once, and pulls only for free slots, so idle
 * copies get the work.
 *
 * Every pattern has two consumers: the driver's shared one (work for `any` machine) and the
 * one of this agent's build machine (work pinned to it, see Subjects.workFor). One consumer
 * with both filters would not do: shared work must go to one agent of any machine, pinned
 * work only to its machine's. The two share the pattern's slots, and each keeps a pull
 * waiting for the free slots (see serve), so neither kind of work waits on an idle pull of
 * the other. Both may then deliver into the last free slot at once: the message that finds
 * none is handed back at once (nak, no delay) for another agent. That costs no attempt (the
 * SDK counts attempts from the run's log); its next delivery is only judged, not fresh.
 */
export class JetStreamServer extends Server implements CustomTransportStrategy {
  private ctx?: JetStreamContext;
  private running = true;
  private readonly workers: Promise<void>[] = [];
  private readonly slots: Slots[] = [];
  private readonly inflight = new Set<Promise<void>>();
  /** Pulls waiting at the server, drained at close. */
  private readonly waitingPulls = new Set<ConsumerMessages>();
  private readonly log = new Logger('JetStreamServer');
  private readonly stopWaiting = new AbortController();
  /** When the connection last dropped or came back (this process's clock), for `fresh`. */
  private unsteadySince = 0;
  /**
   * After a reconnect, the runs stream's last sequence then, and until when (this process's
   * clock) work stored up to it is held back: a restarted nats-server may redeliver work that
   * agents still hold, and those agents need a moment to reconnect and say so (a heartbeat).
   */
  private settling = { upToSeq: 0, until: 0 };
  /** Work stored before this process connected, judged (not fresh) until `until`. */
  private beforeConnect = { upToSeq: Number.MAX_SAFE_INTEGER, until: Number.POSITIVE_INFINITY };
  /** This process's phase of pull expiries (see pullExpiresMs). */
  private readonly expiryPhase = Math.floor(Math.random() * PULL_EXPIRES_MS);

  constructor(private readonly options: JetStreamServerOptions) {
    super();
  }

  async listen(callback: (err?: unknown) => void): Promise<void> {
    try {
      const { config } = this.options;
      this.ctx = await connectJetStream(config);
      // A process that just connected cannot tell whether the server restarted a moment before
      // (and forgot deliveries of work another agent still holds): work stored before it
      // connected is judged for two ack waits, like after a reconnect. Work stored since is not:
      // the server that stored it has been up since before this process connected.
      const atConnect = await this.ctx.jsm.streams.info(this.ctx.subjects.runsStream).catch(() => undefined);
      this.beforeConnect = { upToSeq: atConnect?.state.last_seq ?? Number.MAX_SAFE_INTEGER, until: Date.now() + 2 * config.steps.ackWaitMs };
      void (async () => {
        for await (const s of this.ctx!.nc.status()) {
          if (s.type !== 'disconnect' && s.type !== 'reconnect') continue;
          this.unsteadySince = Date.now();
          if (s.type === 'disconnect') {
            // Everything is held back from here until the reconnect says what was stored before.
            this.settling = { upToSeq: Number.MAX_SAFE_INTEGER, until: Number.POSITIVE_INFINITY };
            continue;
          }
          const until = Date.now() + 2 * this.options.config.agent.heartbeatMs;
          this.settling = { upToSeq: Number.MAX_SAFE_INTEGER, until };
          const info = await this.ctx!.jsm.streams.info(this.ctx!.subjects.runsStream).catch(() => undefined);
          if (info) this.settling = { upToSeq: info.state.last_seq, until };
        }
      })().catch(() => undefined);
      await provisionStreams(this.ctx);
      await this.options.processor.init(this.ctx, [...this.messageHandlers.keys()]);
      const { concurrency, machine } = config.agent;
      for (const [pattern, handler] of this.messageHandlers) {
        const served: Served = { pattern, handler, invoke: this.invoker(handler), slots: new Slots(concurrency) };
        this.slots.push(served.slots);
        for (const m of [undefined, machine]) {
          const source: Source = { machine: m, ...(await this.ensureConsumer(pattern, m)), pulls: 0, lastDelivery: 0, checkedAt: Date.now(), expiredAt: 0 };
          this.workers.push(this.serve(source, served));
        }
        const { subjects } = this.ctx;
        this.log.log(`serving "${pattern}" from ${subjects.workFor(pattern)} and ${subjects.workFor(pattern, machine)} with ${concurrency} slot(s) between them as agent ${config.agent.id}`);
      }
      callback();
    } catch (err) {
      callback(err);
    }
  }

  /** A durable consumer of a driver (of one machine's work, with `machine`); created by whichever agent starts first. */
  private async ensureConsumer(driver: string, machine?: string): Promise<{ consumer: Consumer; createdMs: number }> {
    const ctx = this.ctx!;
    await ensureWorkConsumer(ctx, driver, machine, true);
    const consumer = await ctx.js.consumers.get(ctx.subjects.runsStream, ctx.subjects.consumer(driver, machine));
    const created = (await consumer.info(true)).created;
    return { consumer, createdMs: Date.parse(created) };
  }

  private invoker(handler: MessageHandler): (payload: unknown) => Promise<unknown> {
    return async (payload: unknown) => {
      // Nest's RPC pipeline turns a thrown error into an erroring Observable: awaiting it
      // rethrows, so a failed handler is never taken for a successful one.
      const result = await handler(payload);
      return lastValueFrom(this.transformToObservable(result), { defaultValue: undefined });
    };
  }

  /**
   * Keeps a pull waiting on `source` for every free slot of its pattern, until stopped: one
   * request for all of them (a fetch of as many messages as there are free slots), so an idle
   * agent holds one pull per consumer, not one per slot (with 16 slots, 32 pulls and their
   * heartbeats cost about 1% of a core doing nothing, measured by the bench). While a pull
   * still waits, slots that came free wait to be a REPULL_SHARE of all before they are pulled for.
   */
  private async serve(source: Source, served: Served): Promise<void> {
    const batches = new Set<Promise<void>>();
    const enough = Math.max(1, Math.floor(served.slots.size / REPULL_SHARE));
    while (this.running) {
      const want = served.slots.free - source.pulls;
      if (want <= 0 || (source.pulls > 0 && want < enough)) {
        await served.slots.changed();
        continue;
      }
      // Pulls that expired together are made again as one (see pullExpiresMs): while others
      // still wait, the slots of one that expired wait a moment for theirs.
      const settling = source.expiredAt + COALESCE_MS - Date.now();
      if (settling > 0 && source.pulls > 0) {
        await sleep(settling, this.stopWaiting.signal);
        continue;
      }
      source.pulls += want;
      const batch = this.pull(source, served, want)
        .catch((err) => this.log.error(`a pull from "${served.pattern}" failed: ${(err as Error).stack ?? err}`))
        .finally(() => batches.delete(batch));
      batches.add(batch);
    }
    await Promise.all(batches);
  }

  /** One pull of up to `want` messages, each taken into a slot as it arrives; resolves when their processing ended. */
  private async pull(source: Source, served: Served, want: number): Promise<void> {
    const jobs: Array<Promise<void>> = [];
    let left = want;
    let failed = false;
    let messages: ConsumerMessages | undefined;
    try {
      const expires = this.pullExpiresMs();
      // The server refuses a heartbeat longer than half the wait.
      messages = await source.consumer.fetch({ max_messages: want, expires, idle_heartbeat: Math.min(PULL_HEARTBEAT_MS, Math.floor(expires / 2)) });
      this.waitingPulls.add(messages);
      // Closed while the pull was being made: close() did not see it.
      if (!this.running) void drainPull(messages);
      for await (const msg of messages) {
        left--;
        source.pulls--;
        served.slots.notify();
        const job = this.take(source, served, msg);
        if (job) jobs.push(job);
        if (left === 0) break;
      }
    } catch (err) {
      failed = true;
      // Still counted as pulls until recovered, so a failing consumer is not pulled in a tight loop.
      if (this.running) await this.recover(source, served.pattern, err);
    } finally {
      if (messages) this.waitingPulls.delete(messages);
      if (left > 0 && !failed) source.expiredAt = Date.now();
      source.pulls -= left;
      served.slots.notify();
    }
    await Promise.all(jobs);
  }

  /**
   * How long a pull waits for work: until the next of this process's expiry instants (every
   * PULL_EXPIRES_MS, at a phase of its own, so agents do not pull in step) at least
   * PULL_MIN_MS away, 1–31 s. A pull is made for the slots that came free since the last one;
   * under load each is filled at once, but the small pulls waiting when the load stops would,
   * each expiring on its own schedule, be made again one by one for ever, with their heartbeats
   * (seen: 8 pulls of one consumer, 1.4 a second, an idle agent's CPU and the server's).
   * Expiring together, they are made again as one, on the same grid: one pull every 30 s.
   */
  private pullExpiresMs(): number {
    const untilInstant = PULL_EXPIRES_MS - ((Date.now() - this.expiryPhase) % PULL_EXPIRES_MS);
    return untilInstant < PULL_MIN_MS ? untilInstant + PULL_EXPIRES_MS : untilInstant;
  }

  /** A pulled message into a free slot, and its processing; undefined when it was handed back at once. */
  private take(source: Source, served: Served, msg: JsMsg): Promise<void> | undefined {
    const { pattern, handler, slots } = served;
    // From here to taking the slot nothing is awaited: no other pull decides in between.
    if (!this.running) {
      msg.nak();
      return undefined;
    }
    const wait = this.settling.until - Date.now();
    if (wait > 0 && msg.seq <= this.settling.upToSeq) {
      // Possibly in another agent's hands from before the restart: looked at once it settled.
      msg.nak(Number.isFinite(wait) ? wait : 2 * this.options.config.agent.heartbeatMs);
      return undefined;
    }
    if (slots.free <= 0) {
      // Both consumers delivered into the last slot: handed back for another agent, at once.
      msg.nak();
      return undefined;
    }
    return this.processInSlot(source, served, msg, pattern, handler);
  }

  private async processInSlot(source: Source, served: Served, msg: JsMsg, pattern: string, handler: MessageHandler): Promise<void> {
    const { slots } = served;
    slots.busy++;
    try {
      // A consumer made again by someone else (an operator, the gateway, a lost store) while no
      // pull of ours failed delivers kept work anew. Its delivery sequence went back: read its
      // creation time now, and judge this delivery. For an agent that saw few deliveries, its
      // creation time changed: read in the background at least once an ack wait, off this path.
      const wentBack = msg.info.deliverySequence <= source.lastDelivery;
      source.lastDelivery = msg.info.deliverySequence;
      if (!wentBack && Date.now() - source.checkedAt > this.options.config.steps.ackWaitMs) void this.reread(source, pattern);
      const remade = wentBack && (await this.reread(source, pattern));
      if (!this.running) {
        // Stopped while the consumer was read again: not started now.
        msg.nak();
        return;
      }
      // A consumer that was deleted and made again has a newer creation time than the work it
      // delivers again.
      const fresh =
        !remade &&
        msg.info.deliveryCount === 1 &&
        msg.info.timestampNanos / 1e6 >= source.createdMs &&
        Date.now() - this.unsteadySince > 2 * this.options.config.steps.ackWaitMs &&
        (msg.seq > this.beforeConnect.upToSeq || Date.now() > this.beforeConnect.until);
      const job = this.options.processor.process(msg, pattern, served.invoke, handler.extras ?? {}, fresh).catch((err) => {
        this.log.error(`processing a message of "${pattern}" failed: ${(err as Error).stack ?? err}`);
      });
      this.inflight.add(job);
      await job;
      this.inflight.delete(job);
    } finally {
      slots.busy--;
      slots.notify();
    }
  }

  /**
   * After a failed pull: a consumer that is gone (an operator deleted it, or the server removed
   * it) is made again, once for all the pulls that found it gone; else the pull waits a moment.
   */
  private async recover(source: Source, pattern: string, err: unknown): Promise<void> {
    this.log.warn(`pull from "${pattern}" failed: ${(err as Error).message}; retrying`);
    source.remaking ??= this.remakeIfGone(source, pattern).finally(() => (source.remaking = undefined));
    await source.remaking;
  }

  /** Reads the consumer's creation time again; true when it changed (someone made it again). */
  private async reread(source: Source, pattern: string): Promise<boolean> {
    source.checkedAt = Date.now();
    try {
      const createdMs = Date.parse((await source.consumer.info(false)).created);
      if (createdMs === source.createdMs) return false;
      source.createdMs = createdMs;
      this.log.warn(`consumer of "${pattern}"${source.machine ? ` on ${source.machine}` : ''} was made again by someone else`);
      return true;
    } catch (err) {
      this.log.warn(`could not read consumer of "${pattern}" again: ${(err as Error).message}`);
      // Unknown: the delivery is judged, not taken for fresh.
      return true;
    }
  }

  private async remakeIfGone(source: Source, pattern: string): Promise<void> {
    const { jsm, subjects } = this.ctx!;
    const name = subjects.consumer(pattern, source.machine);
    try {
      const info = await jsm.consumers.info(subjects.runsStream, name).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      if (!info) {
        Object.assign(source, await this.ensureConsumer(pattern, source.machine), { lastDelivery: 0, checkedAt: Date.now() });
        this.log.warn(`consumer ${name} was gone: made it again`);
        return;
      }
      // Made again by someone else (another agent, the gateway) since we last looked: its
      // redeliveries of kept work must not be taken for fresh.
      const createdMs = Date.parse(info.created);
      if (createdMs !== source.createdMs) {
        Object.assign(source, { consumer: await this.ctx!.js.consumers.get(subjects.runsStream, name), createdMs, lastDelivery: 0, checkedAt: Date.now() });
        this.log.warn(`consumer ${name} was made again by someone else: pulling from the new one`);
        return;
      }
    } catch (err) {
      this.log.warn(`could not make consumer ${name} again: ${(err as Error).message}`);
    }
    await sleep(500, this.stopWaiting.signal);
  }

  /**
   * Graceful stop: no new pulls; running steps get `drainTimeoutMs` to finish, then are
   * aborted, which makes the processor hand their messages back (nak) to another agent.
   */
  async close(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopWaiting.abort();
    for (const slots of this.slots) slots.notify();
    const drain = this.options.drainTimeoutMs ?? 30_000;
    const timer = setTimeout(() => this.options.processor.abortAll('agent is shutting down'), drain);
    await Promise.all([...this.inflight]);
    clearTimeout(timer);
    // Pulls still waiting are drained rather than left to expire (up to 30 s): a message the
    // server sent one meanwhile still arrives, and is handed back (nak) for another agent.
    // Bounded: with NATS away, a drain waits for a reconnect that may not come.
    const drained = Promise.all([...this.waitingPulls].map(drainPull)).then(() => Promise.all(this.workers));
    await Promise.race([drained, sleep(DRAIN_PULLS_MS)]);
    await this.options.processor.close();
    const nc = this.ctx?.nc;
    if (nc && !nc.isClosed()) {
      // Bounded too: a drain ends with a flush, which a server that does not answer never ends.
      await Promise.race([nc.drain().catch(() => undefined), sleep(DRAIN_PULLS_MS)]);
      if (!nc.isClosed()) await nc.close();
    }
  }

  on(): void {
    throw new Error('JetStreamServer does not emit events');
  }

  unwrap<T>(): T {
    if (!this.ctx) throw new Error('not connected yet');
    return this.ctx.nc as T;
  }
}

/** A pattern an app serves, with its slots shared by its two consumers. */
interface Served {
  pattern: string;
  handler: MessageHandler;
  invoke: (payload: unknown) => Promise<unknown>;
  slots: Slots;
}

/** One of a pattern's two consumers, as last made sure of. */
interface Source {
  /** Set for the consumer of this agent's machine's work. */
  machine?: string;
  consumer: Consumer;
  /** When the server made it (its clock), for `fresh`. */
  createdMs: number;
  /** Pulls waiting on it (a failed one until it recovered). */
  pulls: number;
  /** The highest delivery sequence it delivered to this agent. */
  lastDelivery: number;
  /** When its creation time was last read (this process's clock). */
  checkedAt: number;
  /** Its check (and making again) after failed pulls, shared by all of them. */
  remaking?: Promise<void>;
  /** When a pull of it last expired with slots unfilled (this process's clock). */
  expiredAt: number;
}

/** A pattern's `size` slots; `changed()` resolves at the next change (a slot or a pull freed, or stop). */
class Slots {
  busy = 0;
  private waiting: Array<() => void> = [];

  constructor(readonly size: number) {}

  get free(): number {
    return this.size - this.busy;
  }

  changed(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  notify(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }
}

/** Waits `ms`, or until `signal` aborts; either way leaves no listener on the (long-lived) signal. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

