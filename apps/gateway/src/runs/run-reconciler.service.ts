import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { KV } from '@nats-io/kv';
import { MESSAGE_VERSION, type StepMessage } from '@conveyor/contracts';
import { JETSTREAM, ensureWorkConsumer, isNotFound, openOpenRunsBucket, type JetStreamContext } from '@conveyor/jetstream';
import { RunLog, isUnstorable } from '@conveyor/run-log';
import { endOnly, judgeStandstill, planTransition, type LogHead, type StepOutcome, type Transition } from '@conveyor/runs';
import { PeriodicCheck } from '../common/periodic-check';

/** Runs looked at per check at most; the rest wait for the next one. */
const MAX_RUNS_PER_CHECK = 2_000;

/**
 * Nothing stays unended without work in flight. Every CONVEYOR_RECONCILE_INTERVAL, each run
 * that has not ended (the projector's open-runs index) is checked against the server: its
 * log's last record, the work of its current step, and the durable consumer that should hold
 * that work (see judgeStandstill).
 *  - Work that waits on a subject no consumer reads (a driver's consumer deleted by hand, a gone
 *    machine's removed by the server) gets its consumer again: then it is counted, and the
 *    watchdog gives up on it when no agent comes.
 *  - A run whose current work left its queue without an outcome (dead-lettered, acked by a
 *    foreign client) or whose log is gone is failed, with a message saying so; its cleanup steps
 *    run where its machine is known. The write is fenced like an agent's hand-off, so a run that
 *    moved on meanwhile is never touched.
 */
@Injectable()
export class RunReconciler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger(RunReconciler.name);
  private readonly runLog: RunLog;
  private openRuns!: KV;
  private checks?: PeriodicCheck;

  constructor(@Inject(JETSTREAM) private readonly ctx: JetStreamContext) {
    this.runLog = new RunLog(ctx);
  }

  async onApplicationBootstrap(): Promise<void> {
    this.openRuns = await openOpenRunsBucket(this.ctx);
    this.checks = new PeriodicCheck('open runs check', this.ctx.config.reconcileIntervalMs, () => this.check(), this.log);
  }

  async onModuleDestroy(): Promise<void> {
    await this.checks?.stop();
  }

  async check(): Promise<void> {
    const ids: string[] = [];
    for await (const key of await this.openRuns.keys()) if (ids.push(key) >= MAX_RUNS_PER_CHECK) break;
    // What a queue's consumer says, read once per check: many runs wait in the same queue.
    const queues = new Map<string, Promise<{ ackFloorSeq: number } | undefined>>();
    for (const runId of ids) {
      try {
        await this.reconcile(runId, queues);
      } catch (err) {
        this.log.warn(`run ${runId}: could not check it: ${(err as Error).message}`);
      }
    }
  }

  private async reconcile(runId: string, queues: Map<string, Promise<{ ackFloorSeq: number } | undefined>>): Promise<void> {
    const { subjects } = this.ctx;
    const head = await this.runLog.head(runId);
    const work = head && head.at.kind !== 'end' ? await this.runLog.stepWork(runId, head.at.stepId) : undefined;
    const queueName = work ? subjects.consumer(work.at.driver, work.at.machine) : undefined;
    if (work && queueName && !queues.has(queueName)) queues.set(queueName, this.queue(queueName));
    const queue = queueName ? await queues.get(queueName) : undefined;
    const judged = judgeStandstill(head, work && { seq: work.seq, driver: work.at.driver, machine: work.at.machine }, queue, subjects.runsStream);
    switch (judged.kind) {
      case 'in-flight':
        return;
      case 'ended':
        await this.openRuns.delete(runId);
        return;
      case 'no-queue':
        this.log.warn(`run ${runId}: its work waits on ${work!.at.machine ? `build machine "${work!.at.machine}"'s` : 'the'} queue of driver "${work!.at.driver}", which is gone; making it again`);
        await ensureWorkConsumer(this.ctx, work!.at.driver, work!.at.machine);
        queues.delete(queueName!);
        return;
      case 'stuck':
        await this.fail(runId, head, work?.msg ?? (head && head.at.kind !== 'end' ? await this.fromFirstRecord(runId, head.at.stepId, work?.at.machine) : undefined), judged.why);
    }
  }

  private async queue(name: string): Promise<{ ackFloorSeq: number } | undefined> {
    try {
      const info = await this.ctx.jsm.consumers.info(this.ctx.subjects.runsStream, name);
      return { ackFloorSeq: info.ack_floor.stream_seq };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The step's work as it began, from the run's first record, when its own work record cannot be read. */
  private async fromFirstRecord(runId: string, stepId: string, machine?: string): Promise<StepMessage | undefined> {
    const first = await this.runLog.first(runId);
    if (first?.kind !== 'work') return undefined;
    const stepIndex = first.msg.pipeline.steps.findIndex((s) => s.id === stepId);
    return stepIndex < 0 ? undefined : { ...first.msg, stepIndex, mode: 'normal', outputs: {}, from: undefined, skipped: undefined, machine: machine ?? first.msg.machine };
  }

  /** Fails the run's current step (its cleanup steps follow), or ends the run when not even the step is known. */
  private async fail(runId: string, head: LogHead | undefined, msg: StepMessage | undefined, why: string): Promise<void> {
    const at = new Date().toISOString();
    const message = `the run had no work in flight: ${why}`;
    const outcome: StepOutcome = { status: 'failed', output: { success: false, message } };
    const by = { attempt: head?.attempt ?? 0, at };
    const tries: Transition[] = msg
      ? [planTransition(msg, outcome, by), endOnly(msg, outcome, by)]
      : [{ kind: 'end', end: { v: MESSAGE_VERSION, kind: 'end', runId, status: 'failed', message, at } }];
    for (const t of tries) {
      try {
        const written = await this.runLog.writeTransition(t, head?.seq ?? 0);
        if (written.stored) this.log.warn(`run ${runId} failed: ${message}`);
        if (!written.stored) this.log.log(`run ${runId} moved on while it was checked; left alone`);
        return;
      } catch (err) {
        // Its cleanup's work cannot be stored: end the run without it.
        if (!isUnstorable(err)) throw err;
      }
    }
  }
}
