import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { DeliverPolicy } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { MESSAGE_VERSION, decodeStepMessage, isTerminalRunStatus, type RunEvent } from '@conveyor/contracts';
import { BUCKETS, JETSTREAM, openAgentsBucket, type Buckets, type JetStreamContext, liveAgents } from '@conveyor/jetstream';
import { MsgIds } from '@conveyor/runs';
import { RunsStore } from '@conveyor/store';

/**
 * Work pinned to a build machine (the steps after container-start) can only run there.
 * When such work waits and no agent of its machine has been alive for the grace period,
 * the run fails with a message that says so instead of hanging. The step messages stay in
 * the stream: when an agent of that machine comes back it skips the normal steps (the
 * run's stop order says failed) and runs the cleanup steps there, so nothing is leaked.
 */
@Injectable()
export class MachineWatchdog implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger(MachineWatchdog.name);
  private agents!: KV;
  private timer?: NodeJS.Timeout;
  private checking?: Promise<void>;
  /** When waiting work of a machine with no live agent was first seen. */
  private readonly deadSince = new Map<string, number>();

  constructor(
    @Inject(JETSTREAM) private readonly ctx: JetStreamContext,
    @Inject(BUCKETS) private readonly buckets: Buckets,
    private readonly runs: RunsStore,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.agents = await openAgentsBucket(this.ctx);
    this.timer = setInterval(() => {
      this.checking ??= this.check()
        .catch((err) => this.log.warn(`machine check failed: ${(err as Error).message}`))
        .finally(() => (this.checking = undefined));
    }, Math.min(this.ctx.config.agent.heartbeatMs, 5_000));
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.checking;
  }

  private async liveMachines(): Promise<Set<string>> {
    return new Set((await liveAgents(this.agents, this.ctx.config.agent.heartbeatMs)).map((a) => a.machine));
  }

  async check(): Promise<void> {
    const { jsm, subjects, config } = this.ctx;
    const live = await this.liveMachines();
    for (const machine of this.deadSince.keys()) if (live.has(machine)) this.deadSince.delete(machine);
    for await (const ci of jsm.consumers.list(subjects.stepsStream)) {
      const sep = ci.name.indexOf('_');
      if (sep < 0) continue; // a driver's shared consumer
      const driver = ci.name.slice(0, sep);
      const machine = ci.name.slice(sep + 1);
      const waiting = ci.num_pending + ci.num_ack_pending;
      if (waiting === 0 || live.has(machine)) continue;
      const since = this.deadSince.get(machine) ?? Date.now();
      this.deadSince.set(machine, since);
      if (Date.now() - since < config.machineGraceMs) continue;
      await this.failWaitingRuns(driver, machine, ci.ack_floor.stream_seq, waiting);
    }
  }

  /** Reads (without consuming) the work waiting for `machine` and fails the runs it belongs to. */
  private async failWaitingRuns(driver: string, machine: string, ackFloor: number, waiting: number): Promise<void> {
    const { js, subjects, config } = this.ctx;
    const consumer = await js.consumers.get(subjects.stepsStream, {
      filter_subjects: subjects.step(driver, machine),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: ackFloor + 1,
    });
    const messages = await consumer.fetch({ max_messages: Math.min(waiting + 10, 1000), expires: 2_000 });
    const seconds = Math.round(config.machineGraceMs / 1000);
    const message = `no agent of build machine "${machine}" has been alive for ${seconds}s, and this run's next step ("${driver}") can only run there; its cleanup steps will run on "${machine}" when one of its agents comes back`;
    for await (const m of messages) {
      const decoded = decodeStepMessage(m.data);
      if (decoded.ok) await this.failRun(decoded.value.runId, decoded.value.stepIndex, message);
      if (m.info.pending === 0) break;
    }
  }

  private async failRun(runId: string, stepIndex: number, message: string): Promise<void> {
    const { js, subjects } = this.ctx;
    const run = (await this.runs.get(runId))?.value;
    if (!run || isTerminalRunStatus(run.status)) return;
    const step = run.steps[stepIndex];
    // The stop order first, so an agent that comes back treats the run as failed.
    await this.buckets.cancels.put(runId, JSON.stringify({ status: 'failed', message, at: new Date().toISOString() }));
    const at = new Date().toISOString();
    const attempt = Math.max(step?.attempts ?? 0, 1);
    const stepEvent: RunEvent = { v: MESSAGE_VERSION, runId, scope: 'step', kind: 'failed', stepId: step?.id, stepIndex, attempt, message, at };
    const runEvent: RunEvent = { v: MESSAGE_VERSION, runId, scope: 'run', kind: 'failed', message, at };
    await Promise.all([
      step && js.publish(subjects.stepEvent(runId, step.id, 'failed'), JSON.stringify(stepEvent), { msgID: MsgIds.stepEvent(runId, stepIndex, attempt, 'failed') }),
      js.publish(subjects.runEvent(runId, 'failed'), JSON.stringify(runEvent), { msgID: MsgIds.runEvent(runId, 'failed') }),
      // Log followers (SSE) are told the run ended.
      js.publish(subjects.logsEnd(runId), JSON.stringify({ runId, status: 'failed', at }), { msgID: `${runId}.logs.end` }),
    ]);
    this.log.warn(`run ${runId} failed: ${message}`);
  }
}
