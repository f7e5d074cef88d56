import { HttpException, Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { AckPolicy, DeliverPolicy, type ConsumerConfig, type JsMsg } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { nanos } from '@nats-io/transport-node';
import { TICKS_CONSUMER, isName, newRunId, type JsonObject, type ScheduleTick, type ScheduleTickOutcome } from '@conveyor/contracts';
import { JETSTREAM, SharedConsumer, type JetStreamContext } from '@conveyor/jetstream';
import { tickKey } from '@conveyor/schedules';
import { endSpan, startSpan, withSpan } from '@conveyor/tracing';
import { ConflictError, NotFoundError, ResourcesStore, RunsStore, isWrongRevision } from '@conveyor/store';
import { MetricsService } from '../metrics/metrics.service';
import { ResourcesService } from '../resources/resources.service';
import { SchedulesStore } from './schedules.store';

/** A tick whose run could not be started for want of NATS is delivered again this much later. */
const RETRY_DELAY_MS = 2000;

/**
 * Starts the run of each stored tick: a durable consumer of the ticks stream shared by every
 * gateway, so each tick is taken by one of them, and a gateway that stops after storing a tick
 * (or while starting its run) leaves it unacked for another to take after the ack wait.
 * Starting a tick's run is idempotent: its run id is recorded first (tick → run id, KV
 * create()); a redelivery finds it, and then the run's record, or the resource version that
 * names it, and starts nothing new. The tick makes a new version (or version 1) of the
 * schedule's resource, through the same path as `POST`/`PUT /resources`.
 */
@Injectable()
export class TickRunner implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger(TickRunner.name);
  private consumer?: SharedConsumer;

  constructor(
    @Inject(JETSTREAM) private readonly ctx: JetStreamContext,
    @Inject('TICK_RUNS_KV') private readonly tickRuns: KV,
    private readonly schedules: SchedulesStore,
    private readonly resourcesService: ResourcesService,
    private readonly resources: ResourcesStore,
    private readonly runs: RunsStore,
    private readonly metrics: MetricsService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.consumer = new SharedConsumer(this.ctx, {
      stream: this.ctx.subjects.ticksStream,
      config: this.consumerConfig(),
      what: 'tick consumer',
      pull: { max_messages: 16 },
      // One tick at a time.
      handle: (m) => this.handle(m),
      log: this.log,
    });
    // Not a reason to refuse to start: the loop makes it again until it can.
    await this.consumer.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.consumer?.stop();
  }

  private consumerConfig(): Partial<ConsumerConfig> & { durable_name: string } {
    return {
      durable_name: TICKS_CONSUMER,
      description: "gateway: starts each schedule tick's run",
      filter_subject: this.ctx.subjects.allTicks,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(this.ctx.config.steps.ackWaitMs),
      max_ack_pending: 1000,
      max_deliver: -1,
    };
  }

  private async handle(m: JsMsg): Promise<void> {
    let tick: ScheduleTick;
    try {
      tick = m.json<ScheduleTick>();
      if (tick?.v !== 1 || typeof tick.schedule !== 'string' || !isName(tick.schedule) || typeof tick.tick !== 'string' || !Number.isFinite(Date.parse(tick.at))) throw new Error('not a tick');
    } catch {
      this.log.warn(`a message on ${m.subject} is not a tick; dropped`);
      m.term();
      return;
    }
    // Kept from redelivery while this gateway works on it: a redelivery means its taker stopped.
    const working = setInterval(() => m.working(), Math.max(300, this.ctx.config.steps.ackWaitMs / 3));
    try {
      const outcome = await this.startTraced(tick, m.info.redelivered);
      if (outcome === 'wait') {
        m.nak(RETRY_DELAY_MS);
        return;
      }
      if (outcome) await this.record(tick.schedule, outcome);
      m.ack();
      this.metrics.tick(tick.schedule, !outcome ? 'skipped' : outcome.error ? 'refused' : 'started');
    } catch (err) {
      this.log.warn(`tick ${tick.tick}: its run could not be started yet: ${(err as Error).message}; trying again`);
      m.nak(RETRY_DELAY_MS);
    } finally {
      clearInterval(working);
    }
  }

  /** A tick is the root of its run's trace, as a request is of the runs it starts. */
  private async startTraced(tick: ScheduleTick, redelivered: boolean): Promise<ScheduleTickOutcome | undefined | 'wait'> {
    const span = startSpan('schedule tick', { attributes: { 'conveyor.schedule': tick.schedule, 'conveyor.tick': tick.tick, ...(tick.catchUp ? { 'conveyor.tick.catch_up': true } : {}) } });
    let failure: string | undefined;
    try {
      const outcome = await withSpan(span, () => this.start(tick, redelivered));
      if (outcome && outcome !== 'wait') span?.setAttributes({ 'conveyor.run.id': outcome.runid, 'conveyor.tick.refused': outcome.error });
      return outcome;
    } catch (err) {
      failure = (err as Error).message;
      throw err;
    } finally {
      endSpan(span, failure);
    }
  }

  /**
   * Starts the tick's run once; undefined when the tick is not to run (its schedule gone or made
   * again since); 'wait' when another delivery of the same tick may be starting it right now.
   */
  private async start(tick: ScheduleTick, redelivered: boolean): Promise<ScheduleTickOutcome | undefined | 'wait'> {
    const s = (await this.schedules.get(tick.schedule))?.value;
    if (!s || Date.parse(tick.at) < Date.parse(s.createdAt)) return undefined;
    const base = { at: tick.at, tick: tick.tick };
    const { runid, mine } = await this.runIdOf(tick);
    // Started already (this is a redelivery): the run's record, or the version that names it, tells.
    if (await this.runs.get(runid)) return { ...base, runid };
    try {
      const latest = await this.resources.latest(s.resource, s.resourceName);
      if (latest?.value.runid === runid) {
        // The version for this tick was stored, its run not started (the gateway stopped in between): start it now.
        await this.resourcesService.startStoredRun(latest.value, s.pipeline);
        return { ...base, runid, version: latest.value.version };
      }
      // Someone else recorded the run id and has written neither version nor run yet: on a first
      // delivery it may be at it this moment (two copies of one tick), so look again shortly; a
      // redelivery means that taker stopped acking it (gone), so this one takes over.
      if (!mine && !redelivered) return 'wait';
      const metadata: JsonObject = { schedule: s.name, tick: tick.tick, tickAt: tick.at, ...(tick.catchUp ? { catchUp: true } : {}) };
      const written = latest
        ? await this.resourcesService.update(s.resource, s.resourceName, { spec: s.spec, metadata, pipeline: s.pipeline }, undefined, runid)
        : await this.resourcesService
            .create({ name: s.resourceName, resource: s.resource, pipeline: s.pipeline, spec: s.spec, metadata }, runid)
            .catch((err) => {
              // Made meanwhile (by a user): a new version of it, then.
              if (!(err instanceof ConflictError)) throw err;
              return this.resourcesService.update(s.resource, s.resourceName, { spec: s.spec, metadata, pipeline: s.pipeline }, undefined, runid);
            });
      this.log.log(`schedule "${s.name}": tick ${tick.tick}${tick.catchUp ? ' (catch-up)' : ''} started run ${written.runid}`);
      return { ...base, runid, version: written.version };
    } catch (err) {
      // What the API would answer with a 4xx (the pipeline deleted since, a spec its definition no longer takes): recorded, not retried.
      if ((err instanceof HttpException && err.getStatus() < 500) || err instanceof NotFoundError) {
        this.log.warn(`schedule "${s.name}": tick ${tick.tick} started no run: ${(err as Error).message}`);
        return { ...base, error: (err as Error).message };
      }
      throw err;
    }
  }

  /** The run id of a tick: made once (KV create), read back by every later delivery; `mine` when this call made it. */
  private async runIdOf(tick: ScheduleTick): Promise<{ runid: string; mine: boolean }> {
    const key = tickKey(tick.schedule, new Date(tick.at));
    const runid = newRunId();
    try {
      await this.tickRuns.create(key, runid);
      return { runid, mine: true };
    } catch (err) {
      if (!isWrongRevision(err) && !/key exists/i.test((err as Error).message)) throw err;
      const e = await this.tickRuns.get(key);
      if (!e || e.operation !== 'PUT') throw new Error(`the run id of tick ${tick.tick} could not be read back`);
      return { runid: e.string(), mine: false };
    }
  }

  /** The schedule's `last`, moved only forward (ticks of one schedule may be taken by different gateways). */
  private async record(name: string, outcome: ScheduleTickOutcome): Promise<void> {
    await this.schedules
      .mutate(name, (cur) => (cur.last && Date.parse(cur.last.at) > Date.parse(outcome.at) ? undefined : { ...cur, last: outcome }))
      .catch((err) => {
        if (!(err instanceof NotFoundError)) throw err;
      });
  }
}
