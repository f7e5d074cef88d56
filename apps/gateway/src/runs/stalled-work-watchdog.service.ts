import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { DeliverPolicy } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { MESSAGE_VERSION, decodeStepMessage, isTerminalRunStatus, type RunEvent } from '@conveyor/contracts';
import { BUCKETS, JETSTREAM, openAgentsBucket, stepQueues, type Buckets, type JetStreamContext, type StepQueue, liveAgents } from '@conveyor/jetstream';
import { MsgIds } from '@conveyor/runs';
import { RunsStore } from '@conveyor/store';

/**
 * Runs never hang on work no agent can take. Step work that waits while no live agent can
 * run it — no agent of the driver at all (a driver that is not running, or a misspelt
 * name), or, for work pinned to a build machine (the steps after container-start), no agent
 * of the driver on that machine — fails its run after a grace period
 * (CONVEYOR_DRIVER_GRACE, CONVEYOR_MACHINE_GRACE), with a message that says which.
 * The step messages stay in the stream: when an agent comes back it skips the normal steps
 * (the run's stop order says failed) and runs the cleanup steps, on the machine that holds
 * what the run made, so nothing is leaked.
 */
@Injectable()
export class StalledWorkWatchdog implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger(StalledWorkWatchdog.name);
  private agents!: KV;
  private timer?: NodeJS.Timeout;
  private checking?: Promise<void>;
  /** When waiting work no live agent could take was first seen, by `driver` or `driver_machine`. */
  private readonly stalledSince = new Map<string, number>();
  /** The last stream sequence whose run was already failed, by the same key: read once, not every check. */
  private readonly handledUpTo = new Map<string, number>();

  constructor(
    @Inject(JETSTREAM) private readonly ctx: JetStreamContext,
    @Inject(BUCKETS) private readonly buckets: Buckets,
    private readonly runs: RunsStore,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.agents = await openAgentsBucket(this.ctx);
    this.timer = setInterval(() => {
      this.checking ??= this.check()
        .catch((err) => this.log.warn(`stalled work check failed: ${(err as Error).message}`))
        .finally(() => (this.checking = undefined));
    }, Math.min(this.ctx.config.agent.heartbeatMs, 5_000));
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.checking;
  }

  async check(): Promise<void> {
    const { config } = this.ctx;
    const agents = await liveAgents(this.agents, config.agent.heartbeatMs);
    const machines = new Set(agents.map((a) => a.machine));
    const serving = new Set(agents.flatMap((a) => a.drivers.flatMap((d) => [d, `${d}_${a.machine}`])));
    const seen = new Set<string>();
    for (const work of await stepQueues(this.ctx)) {
      if (work.pending + work.ackPending === 0) continue;
      const key = work.machine ? `${work.driver}_${work.machine}` : work.driver;
      if (serving.has(key)) continue;
      seen.add(key);
      const since = this.stalledSince.get(key) ?? Date.now();
      this.stalledSince.set(key, since);
      const graceMs = work.machine ? config.machineGraceMs : config.driverGraceMs;
      if (Date.now() - since < graceMs) continue;
      const seconds = Math.round(graceMs / 1000);
      const message = !work.machine
        ? `no agent of driver "${work.driver}" has been alive for ${seconds}s: is an agent of it running, and is the pipeline's driver name right?`
        : machines.has(work.machine)
          ? `no agent of driver "${work.driver}" on build machine "${work.machine}" has been alive for ${seconds}s, and this run's next step can only run there; its cleanup steps will run there when one comes`
          : `no agent of build machine "${work.machine}" has been alive for ${seconds}s, and this run's next step ("${work.driver}") can only run there; its cleanup steps will run on "${work.machine}" when one of its agents comes back`;
      const from = Math.max(work.fromSeq, (this.handledUpTo.get(key) ?? 0) + 1);
      const last = await this.lastSeq(work);
      if (last >= from) this.handledUpTo.set(key, await this.failWaitingRuns(work, from, last, message));
    }
    for (const key of this.stalledSince.keys()) {
      if (!seen.has(key)) {
        this.stalledSince.delete(key);
        this.handledUpTo.delete(key);
      }
    }
  }

  private async lastSeq(work: StepQueue): Promise<number> {
    const { jsm, subjects } = this.ctx;
    const last = await jsm.streams.getMessage(subjects.stepsStream, { last_by_subj: subjects.step(work.driver, work.machine) }).catch(() => null);
    return last?.seq ?? 0;
  }

  /**
   * Reads (without consuming) the waiting work from `from` to `last` and fails the runs it
   * belongs to (at most 1000 per check); returns the last sequence read.
   */
  private async failWaitingRuns(work: StepQueue, from: number, last: number, message: string): Promise<number> {
    const { js, subjects } = this.ctx;
    const consumer = await js.consumers.get(subjects.stepsStream, {
      filter_subjects: subjects.step(work.driver, work.machine),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: from,
    });
    let read = from - 1;
    try {
      const messages = await consumer.fetch({ max_messages: Math.min(work.pending + work.ackPending + 10, 1000), expires: 2_000 });
      for await (const m of messages) {
        read = m.seq;
        const decoded = decodeStepMessage(m.data);
        if (decoded.ok) await this.failRun(decoded.value.runId, decoded.value.stepIndex, message);
        if (m.info.pending === 0 || m.seq >= last) break;
      }
    } finally {
      // The reading consumer would otherwise linger on the stream for its inactivity threshold.
      await consumer.delete().catch(() => undefined);
    }
    return read;
  }

  private async failRun(runId: string, stepIndex: number, message: string): Promise<void> {
    const { js, subjects } = this.ctx;
    const run = (await this.runs.get(runId))?.value;
    if (!run || isTerminalRunStatus(run.status)) return;
    const step = run.steps[stepIndex];
    // A message read past the consumer's ack floor may be one an agent finished already
    // (acks come out of order): its run has moved on.
    if (step && ['succeeded', 'failed', 'skipped', 'cancelled'].includes(step.status)) return;
    // The stop order first, so an agent that comes back treats the run as failed.
    await this.buckets.cancels.put(runId, JSON.stringify({ status: 'failed', message, at: new Date().toISOString() }));
    const at = new Date().toISOString();
    const attempt = Math.max(step?.attempts ?? 0, 1);
    const stepEvent: RunEvent = { v: MESSAGE_VERSION, runId, scope: 'step', kind: 'failed', stepId: step?.id, stepIndex, attempt, message, at };
    const runEvent: RunEvent = { v: MESSAGE_VERSION, runId, scope: 'run', kind: 'failed', message, at };
    await Promise.all([
      step && js.publish(subjects.stepEvent(runId, step.id, 'failed'), JSON.stringify(stepEvent), { msgID: MsgIds.stepGivenUp(runId, stepIndex) }),
      js.publish(subjects.runEvent(runId, 'failed'), JSON.stringify(runEvent), { msgID: MsgIds.runEvent(runId, 'failed') }),
      // Log followers (SSE) are told the run ended.
      js.publish(subjects.logsEnd(runId), JSON.stringify({ runId, status: 'failed', at }), { msgID: `${runId}.logs.end` }),
    ]);
    this.log.warn(`run ${runId} failed: ${message}`);
  }
}
