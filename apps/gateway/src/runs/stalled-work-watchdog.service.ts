import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { DeliverPolicy } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { decodeStepMessage, type StepMessage } from '@conveyor/contracts';
import { JETSTREAM, openAgentsBucket, stepQueues, type JetStreamContext, type StepQueue, liveAgents } from '@conveyor/jetstream';
import { RunLog } from '@conveyor/run-log';
import { judgeDelivery } from '@conveyor/runs';
import { PeriodicCheck } from '../common/periodic-check';

/**
 * Runs never hang on work no agent can take. Step work that waits while no live agent can
 * run it — no agent of the driver at all (a driver that is not running, or a misspelt
 * name), or, for work pinned to a build machine (the steps after container-start), no agent
 * of the driver on that machine — fails its run after a grace period
 * (CONVEYOR_DRIVER_GRACE, CONVEYOR_MACHINE_GRACE), with a message that says which.
 * Giving up is a hand-off like an agent's, written to the run's log with the same fence: the
 * step fails, and the run goes on to its cleanup steps (which wait for their machine's agents,
 * and are given up on in turn when those do not come: the machine's janitor then removes
 * what the run left). An agent that finishes the step at the same moment and the watchdog
 * cannot both move the run on: the server stores one of the two.
 */
@Injectable()
export class StalledWorkWatchdog implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger(StalledWorkWatchdog.name);
  private agents!: KV;
  private checks?: PeriodicCheck;
  /** When waiting work no live agent could take was first seen, by `driver` or `driver_machine`. */
  private readonly stalledSince = new Map<string, number>();
  /** The last stream sequence whose run was already failed, by the same key: read once, not every check. */
  private readonly handledUpTo = new Map<string, number>();

  private readonly runLog: RunLog;

  constructor(@Inject(JETSTREAM) private readonly ctx: JetStreamContext) {
    this.runLog = new RunLog(ctx);
  }

  async onApplicationBootstrap(): Promise<void> {
    this.agents = await openAgentsBucket(this.ctx);
    this.checks = new PeriodicCheck('stalled work check', Math.min(this.ctx.config.agent.heartbeatMs, 5_000), () => this.check(), this.log);
  }

  async onModuleDestroy(): Promise<void> {
    await this.checks?.stop();
  }

  async check(): Promise<void> {
    const { config, subjects } = this.ctx;
    const waiting = (await stepQueues(this.ctx)).filter((work) => work.pending + work.ackPending > 0);
    // The agents are read only when some work waits: an idle system's check is one request.
    const agents = waiting.length ? await liveAgents(this.agents) : [];
    const machines = new Set(agents.map((a) => a.machine));
    const serving = new Set(agents.flatMap((a) => a.drivers.flatMap((d) => [subjects.consumer(d), subjects.consumer(d, a.machine)])));
    const seen = new Set<string>();
    for (const work of waiting) {
      const key = subjects.consumer(work.driver, work.machine);
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
    const last = await jsm.streams.getMessage(subjects.runsStream, { last_by_subj: subjects.workFor(work.driver, work.machine) }).catch(() => null);
    return last?.seq ?? 0;
  }

  /**
   * Reads (without consuming) the waiting work from `from` to `last` and fails the runs it
   * belongs to (at most 1000 per check); returns the last sequence read.
   */
  private async failWaitingRuns(work: StepQueue, from: number, last: number, message: string): Promise<number> {
    const { js, subjects } = this.ctx;
    const consumer = await js.consumers.get(subjects.runsStream, {
      filter_subjects: subjects.workFor(work.driver, work.machine),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: from,
    });
    let read = from - 1;
    try {
      const messages = await consumer.fetch({ max_messages: Math.min(work.pending + work.ackPending + 10, 1000), expires: 2_000 });
      for await (const m of messages) {
        read = m.seq;
        const decoded = decodeStepMessage(m.data);
        if (decoded.ok) await this.giveUp(decoded.value, m.seq, message);
        if (m.info.pending === 0 || m.seq >= last) break;
      }
    } finally {
      // The reading consumer would otherwise linger on the stream for its inactivity threshold.
      await consumer.delete().catch(() => undefined);
    }
    return read;
  }

  /**
   * Fails the step of `msg` (waiting at `seq`) with `message`, if it is still the run's open
   * step: a message read past the consumer's ack floor may be one an agent finished already
   * (acks come out of order), and its run has moved on.
   */
  private async giveUp(msg: StepMessage, seq: number, message: string): Promise<void> {
    const step = msg.pipeline.steps[msg.stepIndex];
    const head = await this.runLog.stepHead(msg);
    const judged = judgeDelivery(step.id, seq, head);
    if (!judged.run) return;
    const r = await this.runLog.failStep(msg, { status: 'failed', output: { success: false, message } }, { attempt: Math.max(judged.attempt - 1, 0), at: new Date().toISOString() }, judged.expect);
    if (!r.stored) return;
    this.log.warn(`run ${msg.runId}: step ${step.id} given up: ${message}`);
    // Withdrawn: an agent that comes later must not take it for fresh work (it would run it,
    // and only its hand-off would be refused).
    await this.runLog.withdraw(seq);
  }
}
