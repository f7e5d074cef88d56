import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { KV } from '@nats-io/kv';
import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import { MESSAGE_VERSION, type StepMessage } from '@conveyor/contracts';
import { JETSTREAM, ensureWorkConsumer, isNotFound, leaveOpenRuns, liveAgents, openAgentsBucket, openOpenRunsBucket, type JetStreamContext } from '@conveyor/jetstream';
import { RunLog } from '@conveyor/run-log';
import { isLine, judgeStandstill, type LogHead, type WorkQueueState } from '@conveyor/runs';
import { PeriodicCheck } from '../common/periodic-check';

/** Runs looked at per check at most; the next check goes on from there. */
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
 *    foreign client) or whose log is gone is failed, with a message saying so, once two checks
 *    in a row found it so at the same end of its log; its cleanup steps run where its machine is
 *    known. The write is fenced like an agent's hand-off, so a run that moved on meanwhile is
 *    never touched; a step a live agent says it runs is never judged stuck.
 */
@Injectable()
export class RunReconciler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger(RunReconciler.name);
  private readonly runLog: RunLog;
  private openRuns!: KV;
  private agents!: KV;
  private checks?: PeriodicCheck;
  private stopping = false;
  /** Where the next check's window of open runs starts. */
  private cursor = 0;
  /** Runs a check found stuck once, with their log's last sequence then. */
  private readonly suspects = new Map<string, number>();

  constructor(@Inject(JETSTREAM) private readonly ctx: JetStreamContext) {
    this.runLog = new RunLog(ctx);
  }

  async onApplicationBootstrap(): Promise<void> {
    this.openRuns = await openOpenRunsBucket(this.ctx);
    this.agents = await openAgentsBucket(this.ctx);
    this.checks = new PeriodicCheck('open runs check', this.ctx.config.reconcileIntervalMs, () => this.check(), this.log);
  }

  async onModuleDestroy(): Promise<void> {
    this.stopping = true;
    await this.checks?.stop();
  }

  async check(): Promise<void> {
    const all: string[] = [];
    for await (const key of await this.openRuns.keys()) all.push(key);
    if (!all.length) {
      // Nothing open: nothing else to read.
      this.suspects.clear();
      return;
    }
    // A window of the open runs per check, moved on each time, so every run is looked at however many are open.
    if (this.cursor >= all.length) this.cursor = 0;
    const ids = all.slice(this.cursor, this.cursor + MAX_RUNS_PER_CHECK);
    this.cursor += ids.length;
    const running = new Set((await liveAgents(this.agents)).flatMap((a) => a.running.map((r) => `${r.runId}/${r.stepId}`)));
    // What a queue's consumer says, read once per check: many runs wait in the same queue.
    const queues = new Map<string, Promise<WorkQueueState | undefined>>();
    for (const runId of ids) {
      if (this.stopping) return;
      try {
        const seq = await this.reconcile(runId, queues, running);
        if (seq === undefined) this.suspects.delete(runId);
        else this.suspects.set(runId, seq);
      } catch (err) {
        this.log.warn(`run ${runId}: could not check it: ${(err as Error).message}`);
      }
    }
    // Forget suspects that are no longer open (ended, or their key expired).
    const open = new Set(all);
    for (const runId of this.suspects.keys()) if (!open.has(runId)) this.suspects.delete(runId);
  }

  /** Judges one open run; returns the head's sequence when it looked stuck for the first time (it is failed only if it still does at the next check). */
  private async reconcile(runId: string, queues: Map<string, Promise<WorkQueueState | undefined>>, running: Set<string>): Promise<number | undefined> {
    const { subjects } = this.ctx;
    const head = await this.runLog.head(runId);
    // A last record no reader of this version understands (a newer writer's): not ours to judge.
    if (head?.at.kind === 'end' && head.at.runId !== runId) return undefined;
    if (head?.at.kind === 'done') return this.settleGraph(runId);
    const work = head && head.at.kind !== 'end' ? await this.runLog.stepWork(runId, head.at.stepId) : undefined;
    if (work?.msg && !isLine(work.msg.pipeline.steps)) return this.settleGraph(runId);
    const queueName = work ? subjects.consumer(work.at.driver, work.at.machine) : undefined;
    if (work && queueName && !queues.has(queueName)) queues.set(queueName, this.queue(queueName, work.at.driver, work.at.machine));
    const queue = queueName ? await queues.get(queueName) : undefined;
    const runningNow = head !== undefined && head.at.kind !== 'end' && running.has(`${runId}/${head.at.stepId}`);
    const judged = judgeStandstill(head, work && { seq: work.seq, driver: work.at.driver, machine: work.at.machine }, queue, subjects.runsStream, runningNow);
    switch (judged.kind) {
      case 'in-flight':
        return undefined;
      case 'unknown':
        this.log.warn(`run ${runId}: cannot tell whether its work is in flight: ${judged.why}`);
        return undefined;
      case 'ended':
        await leaveOpenRuns(this.openRuns, runId);
        return undefined;
      case 'no-queue':
        this.log.warn(`run ${runId}: its work waits on ${work!.at.machine ? `build machine "${work!.at.machine}"'s` : 'the'} queue of driver "${work!.at.driver}", which is gone; making it again`);
        await ensureWorkConsumer(this.ctx, work!.at.driver, work!.at.machine);
        queues.delete(queueName!);
        return undefined;
      case 'stuck': {
        // Judged stuck twice in a row at the same end of its log: a moment's reading (a queue's
        // state between two of the server's updates) never fails a run.
        const seq = head?.seq ?? 0;
        if (this.suspects.get(runId) !== seq) return seq;
        await this.fail(runId, head, work?.msg ?? (head && head.at.kind !== 'end' ? await this.fromFirstRecord(runId, head.at.stepId, work?.at.machine) : undefined), judged.why);
        return undefined;
      }
    }
  }

  /**
   * A graph run (its log's end says little about what is in flight: steps run side by side):
   * when none of its steps has work waiting or running, whoever ended the last one stopped
   * before writing what follows (a gateway that gave a step up, say); settling writes it, once.
   * Its steps' work in flight is watched by their agents' redeliveries and the stalled-work
   * watchdog (not judged against its queue here yet).
   */
  private async settleGraph(runId: string): Promise<undefined> {
    const first = await this.runLog.first(runId);
    if (first?.kind !== 'work') return undefined;
    const g = await this.runLog.graph(runId, first.msg.pipeline.steps);
    if (g.ended) {
      await leaveOpenRuns(this.openRuns, runId);
      return undefined;
    }
    // Approval steps whose time to wait for a person is up fail (their own `timeout`, or CONVEYOR_APPROVAL_TIMEOUT).
    for (const [i, v] of g.steps.entries()) {
      const step = first.msg.pipeline.steps[i];
      if (!step.approval || v.state !== 'ready' || v.head?.storedAt === undefined) continue;
      const waitMs = step.timeout ? step.timeout * 1000 : this.ctx.config.approvalTimeoutMs;
      if (Date.now() - v.head.storedAt < waitMs) continue;
      const message = `no one approved or rejected it within ${Math.round(waitMs / 1000)}s (approval timed out)`;
      const r = await this.runLog.endWaiting(runId, step.id, v.headSeq, { status: 'failed', output: { success: false, message } }, { attempt: 1, agent: 'gateway', at: new Date().toISOString() });
      if (r?.stored) this.log.warn(`run ${runId}: step ${step.id}: ${message}`);
    }
    if (g.steps.some((v) => v.state === 'ready' || v.state === 'running')) return undefined;
    this.log.warn(`run ${runId}: no step of its graph is waiting or running and it has not ended; settling it`);
    await this.runLog.settle(first.msg);
    return undefined;
  }

  private async queue(name: string, driver: string, machine?: string): Promise<WorkQueueState | undefined> {
    try {
      const info = await this.ctx.jsm.consumers.info(this.ctx.subjects.runsStream, name);
      const c = info.config;
      const isWorkQueue = c.filter_subject === this.ctx.subjects.workFor(driver, machine) && c.deliver_policy === DeliverPolicy.All && c.ack_policy === AckPolicy.Explicit;
      return { ackFloorSeq: info.ack_floor.stream_seq, isWorkQueue };
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
    const expect = head?.seq ?? 0;
    const written = msg
      ? await this.runLog.failStep(msg, { status: 'failed', output: { success: false, message } }, { attempt: head?.attempt ?? 0, at }, expect)
      : await this.runLog.writeTransition({ kind: 'end', end: { v: MESSAGE_VERSION, kind: 'end', runId, status: 'failed', message, at } }, expect);
    if (written.stored) this.log.warn(`run ${runId} failed: ${message}`);
    else this.log.log(`run ${runId} moved on while it was checked; left alone`);
  }
}
