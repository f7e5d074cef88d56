import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { AckPolicy, DeliverPolicy, type ConsumerConfig, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { PROJECTOR_CONSUMER, decodeRunRecord, runIdOf, type LogsEnd, type Run, type RunEnd, type RunEvent, type RunRecord } from '@conveyor/contracts';
import type { KV } from '@nats-io/kv';
import { JETSTREAM, SharedConsumer, leaveOpenRuns, openOpenRunsBucket, type JetStreamContext } from '@conveyor/jetstream';
import { RunLog } from '@conveyor/run-log';
import { applyEvent, graphRoots, recordEvents, runFromFirstWork } from '@conveyor/runs';
import { ConflictError, NotFoundError, RunsStore, type Versioned } from '@conveyor/store';
import { MetricsService } from '../metrics/metrics.service';
import { ReportOutbox } from '../reports/report-outbox.service';
import { CreatedRuns } from './created-runs';
import { RunAdmission } from './run-admission.service';

const RESTART_DELAY_MS = 1000;
/**
 * Records a gateway took and did not fold come back this soon to another gateway (or to
 * this one restarted): a run's record follows its log within seconds of a gateway's crash.
 * Folding a batch takes milliseconds; a redelivered record is folded again harmlessly.
 */
const PROJECTOR_ACK_WAIT_MS = 3_000;
/** Open runs whose last folded record a gateway keeps (the oldest is forgotten first). */
const FOLDED_KEPT = 1_000;
/**
 * How long records are gathered before a fold. A run's records come close together (a step's
 * end and the next one's start; a fast run's whole log): gathered, they are folded with one
 * write of the run record, and a run that starts and ends within one gathering never enters
 * the open-runs index. A run record shows what happened this much later.
 */
const GATHER_MS = 20;

/**
 * Folds the records of runs' logs into the runs bucket, so that `GET /runs/:id` shows what
 * the drivers did. A durable consumer shared by every gateway copy: each record is folded by
 * one of them, and `applyEvent` is order-independent and idempotent, so redeliveries and
 * batching are both safe. A record is acked only after its run record was written. When a
 * run ends, its log followers are told (the end-of-logs marker).
 */
@Injectable()
export class RunProjector implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger(RunProjector.name);
  private consumer?: SharedConsumer;
  private stopped = false;
  private readonly pending: JsMsg[] = [];
  private draining?: Promise<void>;
  private gathering?: NodeJS.Timeout;

  constructor(
    @Inject(JETSTREAM) private readonly ctx: JetStreamContext,
    private readonly runs: RunsStore,
    private readonly metrics: MetricsService,
    private readonly admission: RunAdmission,
    private readonly reports: ReportOutbox,
    private readonly created: CreatedRuns,
  ) {
    this.runLog = new RunLog(ctx);
  }

  private readonly runLog: RunLog;
  /** Runs that have not ended, for the reconciler (see openOpenRunsBucket). */
  private openRuns!: KV;
  /**
   * The run record this gateway stored last, by open run: the next fold of the run starts from
   * it instead of reading it (a read per record saved). Someone else's write in between (another
   * gateway, a cancel) makes the compare-and-set fail, and that fold reads.
   */
  private readonly folded = new Map<string, Versioned<Run>>();

  async onApplicationBootstrap(): Promise<void> {
    this.openRuns = await openOpenRunsBucket(this.ctx);
    this.consumer = new SharedConsumer(this.ctx, {
      stream: this.ctx.subjects.runsStream,
      config: this.consumerConfig(),
      what: 'event consumer',
      pull: { max_messages: 256 },
      handle: (m) => this.enqueue(m),
      log: this.log,
    });
    // Made before the app serves: a first run's records must have their reader.
    await this.consumer.start({ required: true });
  }

  async onModuleDestroy(): Promise<void> {
    await this.consumer?.stop();
    // What was being gathered is folded now rather than left to another gateway's redelivery.
    if (this.gathering) {
      clearTimeout(this.gathering);
      this.gathering = undefined;
      this.kick(0);
    }
    await this.draining;
  }

  private consumerConfig(): Partial<ConsumerConfig> & { durable_name: string } {
    return {
      durable_name: PROJECTOR_CONSUMER,
      description: "gateway: folds runs' logs into the runs bucket",
      // Two filters (nats-server 2.10): the runs' logs and the starts recorded beside them.
      filter_subjects: [this.ctx.subjects.allRunRecords, this.ctx.subjects.allEvents],
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(PROJECTOR_ACK_WAIT_MS),
      max_ack_pending: 1000,
      max_deliver: -1,
    };
  }

  private enqueue(m: JsMsg): void {
    this.pending.push(m);
    this.kick();
  }

  /** Folds what has arrived after `gatherMs`, unless a fold is under way or due (it takes them on). */
  private kick(gatherMs = GATHER_MS): void {
    if (this.draining || this.gathering) return;
    const fold = () => {
      this.gathering = undefined;
      this.draining = this.drain()
        // Acking on a connection that just closed throws; unacked events are redelivered, so log and go on.
        .catch((err) => this.log.warn(`folding events failed: ${(err as Error).message}; they will be redelivered`))
        .finally(() => {
          this.draining = undefined;
          // An event that arrived after drain() saw an empty queue but before this ran would
          // otherwise wait for the next event, or for ack_wait (30 s) at the end of a burst.
          if (this.pending.length && !this.stopped) this.kick();
        });
    };
    if (gatherMs > 0) this.gathering = setTimeout(fold, gatherMs);
    else fold();
  }

  /** Folds whatever has arrived, one batch at a time; messages that arrive meanwhile form the next batch. */
  private async drain(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending.splice(0, this.pending.length);
      await this.fold(batch);
    }
  }

  async fold(batch: JsMsg[]): Promise<void> {
    const byRun = new Map<string, { events: RunEvent[]; msgs: JsMsg[]; records: RunRecord[]; end?: RunEnd }>();
    for (const m of batch) {
      const where = this.ctx.subjects.parseRunRecord(m.subject);
      const decoded = where ? decodeRunRecord(where, m.data) : { ok: false as const, reason: 'not a record of a run\'s log' };
      if (!decoded.ok) {
        this.log.warn(`terminated a message on ${m.subject} (stream seq ${m.seq}): ${decoded.reason}`);
        m.term(decoded.reason);
        continue;
      }
      const record = decoded.value;
      const runId = runIdOf(record);
      const group = byRun.get(runId) ?? { events: [], msgs: [], records: [] };
      group.events.push(...recordEvents(record, m.seq, new Date(m.info.timestampNanos / 1e6).toISOString()));
      group.msgs.push(m);
      group.records.push(record);
      if (record.kind === 'end') group.end = record.end;
      byRun.set(runId, group);
    }
    await Promise.all(
      [...byRun].map(async ([runId, { events, msgs, records, end }]) => {
        try {
          const run = await this.foldRun(runId, events, records);
          // Its concurrency group goes to the next run waiting for it (the group's check does it if this does not).
          if (end && run.group) await this.admission.release(run.group, runId).catch((err) => this.log.warn(`run ${runId}: could not hand its concurrency group "${run.group}" on: ${(err as Error).message} (the group check will)`));
          // The open-runs index: entered at a run's first record, left at its end; a run whose
          // first record and end are folded together never enters it. A first record
          // redelivered after the end enters it again; the reconciler removes such a key.
          const started = records.some(isFirstRecord);
          if (end) this.folded.delete(runId);
          if (end && !started) await leaveOpenRuns(this.openRuns, runId);
          else if (started && !end) await this.openRuns.put(runId, '');
          // Its commit status and notifications are stored before the records are acked: a
          // gateway that stops in between folds them again, and stores nothing twice.
          if (started) await this.reports.store(run, 'start');
          if (end) await this.reports.store(run, 'end');
          // Log followers (SSE) are told the run ended; the id stores it once.
          if (end) {
            const marker: LogsEnd = { runId, status: end.status, at: end.at };
            await this.ctx.js.publish(this.ctx.subjects.logsEnd(runId), JSON.stringify(marker), { msgID: `${runId}.logs.end` });
          }
          for (const m of msgs) m.ack();
          for (const r of records) this.metrics.observe(r);
        } catch (err) {
          if (err instanceof NotFoundError) {
            this.log.warn(`${msgs.length} record(s) of run ${runId}, whose log has no first step, acked and dropped`);
            for (const m of msgs) m.ack();
            return;
          }
          // NATS trouble: let JetStream redeliver them later.
          this.log.warn(`could not fold ${msgs.length} record(s) of run ${runId}: ${(err as Error).message}; will retry`);
          for (const m of msgs) m.nak(RESTART_DELAY_MS);
        }
      }),
    );
  }

  /** One compare-and-set write for all of a run's facts in the batch; the record is made from the run's first step when missing. */
  private async foldRun(runId: string, events: RunEvent[], records: RunRecord[]): Promise<Run> {
    const apply = async (known = this.folded.get(runId)) => {
      const stored = await this.runs.mutateFrom(
        runId,
        (run) => {
          const next = events.reduce(applyEvent, run);
          return next === run ? undefined : next;
        },
        known,
      );
      this.folded.delete(runId);
      this.folded.set(runId, stored);
      if (this.folded.size > FOLDED_KEPT) this.folded.delete(this.folded.keys().next().value!);
      return stored.value;
    };
    try {
      // A run this gateway started: from the record its starter wrote (waiting for it if need be).
      return await apply(this.folded.get(runId) ?? (await this.created.take(runId)));
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      // The gateway that started the run stopped before writing its record.
      const first = records.find(isFirstRecord) ?? (await this.runLog.first(runId));
      if (first?.kind !== 'work') throw err;
      await this.runs.create(runId, runFromFirstWork(first.msg)).catch((e) => {
        if (!(e instanceof ConflictError)) throw e;
      });
      return apply();
    }
  }
}

/** A run's first work: of a step that needs none (a graph starts with all of them at once). */
function isFirstRecord(r: RunRecord): boolean {
  return r.kind === 'work' && r.msg.mode === 'normal' && !r.msg.from && graphRoots(r.msg.pipeline.steps).includes(r.msg.stepIndex);
}
