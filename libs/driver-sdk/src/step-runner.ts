import { Logger } from '@nestjs/common';
import type { MsgHdrs } from '@nats-io/transport-node';
import type { JsMsg } from '@nats-io/jetstream';
import {
  Headers,
  decodeStepMessage,
  protocolProblem,
  type AgentInfo,
  type DeadLetter,
  type PipelineStep,
  type StepMessage,
  type StepOutput,
} from '@conveyor/contracts';
import type { ConveyorConfig } from '@conveyor/config';
import { liveBeats, openAgentsBucket, openBuckets, type JetStreamContext } from '@conveyor/jetstream';
import { LogPublisher, StepLogWriter } from '@conveyor/logs';
import { RunLog, type RecordWriter } from '@conveyor/run-log';
import { ArtifactStore } from '@conveyor/artifacts';
import { CacheStore } from '@conveyor/caches';
import type { AgentStoreMetrics } from '@conveyor/metrics';
import { buildMasker, maskDeep, openSecretsBucket, secretRefs, SecretsStore } from '@conveyor/secrets';
import { ancestorsNearestFirst, interpolateConfig, isLine, planHandOff, type StepOutcome } from '@conveyor/runs';
import type { MessageProcessor } from '@conveyor/transport';
import { ActiveStep, ActiveSteps } from './active-steps';
import { followConformanceInstruction } from './conformance';
import { CancelWatch, type StopOrder } from './cancel-watch';
import type { HandleStepOptions } from './handle-step.decorator';
import { Heartbeat } from './heartbeat';
import { retryDelayMs } from './backoff';
import { ack, holdMessage } from './keep-alive';
import { StepRecords, type Written } from './step-records';
import type { StepArtifacts, StepCaches, StepContext, StepResult } from './step-context';
import { attemptEnded, attemptSpan, handOffEnded, handOffSpan } from './step-span';
import { withSpan, type Span } from '@conveyor/tracing';

/** Attempts allowed beyond a step's own when the agents running it stopped (died, lost their connection) before finishing it. */
const EXTRA_ATTEMPTS = 2;
/** A dead letter keeps this much of the payload: a record of a near-max_payload message must itself fit under max_payload. */
const DEAD_LETTER_PAYLOAD_BYTES = 64 * 1024;

interface StepSecrets {
  values: ReadonlyMap<string, string>;
  mask: (line: string) => string;
  problem?: string;
}

/** A step attempt this agent owns: its claim is the last record of the run's log, at `seq`. */
interface Owned {
  msg: StepMessage;
  step: PipelineStep;
  attempt: number;
  seq: number;
  by: RecordWriter;
  /** The driver releases the run's machine (HandleStepOptions.releasesMachine): its hand-off unpins what follows. */
  releases: boolean;
  /** The attempt's span, when tracing is on: its hand-off's span is a child of it. */
  span?: Span;
}

/**
 * The step protocol every driver shares, for each delivered step message:
 *   1. read it (a message nobody can read is dead-lettered, and its run failed);
 *   2. judge it against its run's log and claim the attempt (StepRecords.claim): a message
 *      whose step already ended, whose run ended, or that another agent took over, is only
 *      acked; attempts are counted from the log's claims;
 *   3. run the handler, bounded by the step's timeout, in-progress acks keeping the message;
 *   4. hand the run on with one fenced record — the next step's work carrying this step's
 *      outcome, or the run's end — and only then ack. A retry records the failed attempt and
 *      hands the message back after a pause; a shutdown gives it back unstarted-for-counting.
 * A crash at any point leaves the message unacked: another agent takes it, and the log tells
 * it where the step stands. Every write is fenced on the run's log, so no two agents can
 * both move a run on.
 */
export class StepRunner implements MessageProcessor {
  private ctx!: JetStreamContext;
  private runLog!: RunLog;
  /** Every step's log lines go out through one publisher (one subscription for their acknowledgements). */
  private logs!: LogPublisher;
  private records!: StepRecords;
  private readonly active = new ActiveSteps();
  private heartbeat?: Heartbeat;
  private secrets?: SecretsStore;
  /** Opened at the first step that uses artifacts: most drivers never do. */
  private artifactStore?: Promise<ArtifactStore>;
  private cacheStore?: Promise<CacheStore>;
  private readonly cancels = new CancelWatch((runId, order) => {
    const n = this.active.cancelRun(runId, order.message);
    if (n) this.log.log(`run ${runId}: cancelled, aborting ${n} step(s)`);
  });
  private readonly log = new Logger('StepRunner');

  constructor(
    private readonly config: ConveyorConfig,
    /** Told when a handler starts; the returned function, how it ended (e.g. the agent's metrics). */
    private readonly onStep?: (driver: string) => (outcome: 'succeeded' | 'failed') => void,
    /** Counts what artifacts and caches move (the agent's metrics). */
    private readonly storeMetrics?: AgentStoreMetrics,
  ) {}

  async init(ctx: JetStreamContext, drivers: string[]): Promise<void> {
    this.ctx = ctx;
    this.runLog = new RunLog(ctx);
    this.logs = new LogPublisher(ctx.nc);
    const agents = await openAgentsBucket(ctx);
    this.records = new StepRecords(
      this.runLog,
      async (agent) => {
        const e = await agents.get(agent);
        if (!e || e.operation !== 'PUT') return undefined;
        return { storedAt: e.created.getTime(), running: e.json<AgentInfo>().running };
      },
      // Whether another delivery may run the step: here (besides the one asking), on another live
      // agent by its last beat, or on a live agent of its driver not heard from since the work was
      // stored (both on the server's clock).
      async (runId, stepId, driver, workStoredAt) => {
        if (this.active.count(runId, stepId) > 1) return true;
        return (await liveBeats(agents)).some(
          ({ info: a, storedAt }) =>
            a.id !== this.config.agent.id && (a.running.some((r) => r.runId === runId && r.stepId === stepId) || (a.drivers.includes(driver) && storedAt < workStoredAt)),
        );
      },
    );
    const buckets = await openBuckets(ctx);
    this.secrets = new SecretsStore(await openSecretsBucket(ctx), this.config.secretKey);
    await this.cancels.start(ctx, buckets.cancels);
    this.heartbeat = new Heartbeat(agents, this.config, drivers, () => this.active.list());
    await this.heartbeat.start(reconnects(ctx));
  }

  /** The agent starts draining: its heartbeat entry says so at once (see Heartbeat.drain). */
  async draining(): Promise<void> {
    await this.heartbeat?.drain();
  }

  abortAll(reason: string): void {
    this.active.abortAll('shutdown', reason);
  }

  async close(): Promise<void> {
    this.cancels.stop();
    await this.heartbeat?.stop();
    // Every step has flushed its lines by now (the transport waited for them).
    this.logs?.close();
  }

  async process(m: JsMsg, driver: string, invoke: (payload: unknown) => Promise<unknown>, extras: HandleStepOptions = {}, fresh = false): Promise<void> {
    // Only under `conveyor conformance`: the step's instruction replaces the driver's handler.
    if (this.config.conformance) invoke = (ctx) => followConformanceInstruction(ctx as StepContext);
    // A protocol major this agent does not speak is refused before its payload is read (docs/protocol.md).
    const unspoken = protocolProblem(m.headers?.get(Headers.Protocol));
    if (unspoken) return this.deadLetter(m, driver, unspoken);
    const decoded = decodeStepMessage(m.data);
    if (!decoded.ok) return this.deadLetter(m, driver, decoded.reason);
    let msg = decoded.value;
    const step = msg.pipeline.steps[msg.stepIndex];
    const where = this.ctx.subjects.parseRunRecord(m.subject);
    if (where?.kind !== 'work' || where.runId !== msg.runId || where.stepId !== step.id) {
      return this.deadLetter(m, driver, `the message is for run ${msg.runId} step "${step.id}", not what its subject names`, msg);
    }
    if (step.driver !== driver) {
      return this.deadLetter(m, driver, `step "${step.id}" is for driver "${step.driver}", not "${driver}"`, msg);
    }
    const { id: agent, machine } = this.config.agent;
    // A pinning step pins the run to this machine whatever its outcome: what it made here
    // (a container) is cleaned up here.
    if (extras.pinsMachine && !msg.machine) msg = { ...msg, machine };
    const by: RecordWriter = { agent, machine, delivery: m.info.deliveryCount };
    const release = holdMessage(m, this.config.steps.ackWaitMs);
    // Registered before the stop orders are read: a cancel is either known already or
    // reaches this step through the watch, never neither.
    const active = new ActiveStep(msg.runId, step.id, driver, msg.mode === 'normal' && !step.always);
    this.active.add(active);
    try {
      // A fresh delivery runs on its own message as the end of the run's log; any other is
      // judged from the log first (it may be work in another agent's hands).
      const first = fresh ? ({ run: true, attempt: 1, expect: m.seq, takeover: false } as const) : undefined;
      const stop = this.cancels.get(msg.runId);
      if (stop && msg.mode === 'normal' && !step.always) return await this.skip(m, msg, by, stop, first);
      // The run's secrets are read while the claim is on its way (it never rejects).
      const secrets = this.stepSecrets(msg, step);
      // A fresh delivery (see MessageProcessor) is not claimed: its own message is the end of the
      // run's log unless a gateway moved the run past it (and withdrew it), and its hand-off is
      // fenced on that message. Its start is recorded beside the log, for a takeover to count.
      const claimed = fresh ? ({ attempt: 1, seq: m.seq, takeover: false } as const) : await this.records.claim(msg, m.seq, by, m.info.timestampNanos / 1e6);
      if (!claimed) return m.nak(5_000);
      if (!('attempt' in claimed)) {
        this.log.log(`run ${msg.runId}: step ${step.id} not run: ${claimed.why}`);
        // Still another agent's: looked at again after its next heartbeat.
        if (claimed.wait) return m.nak(this.config.agent.heartbeatMs);
        return ack(m);
      }
      if (claimed.takeover) this.log.warn(`run ${msg.runId}: step ${step.id} taken over as attempt ${claimed.attempt}: the agent running it before stopped answering`);
      if (stop && msg.mode === 'normal') msg = { ...msg, mode: 'cleanup', outcome: { status: stop.status, stepId: step.id, message: stop.message } };
      const span = attemptSpan(msg, step, claimed.attempt, this.config.agent, m.headers, claimed.takeover);
      const owned: Owned = { msg, step, attempt: claimed.attempt, seq: claimed.seq, by, releases: extras.releasesMachine === true, span };
      const maxAttempts = (step.retries ?? this.config.steps.defaultRetries) + 1;
      try {
        // Active through the handler and the hand-off: their spans and log lines find it.
        await withSpan(span, async () => {
          if (claimed.attempt > maxAttempts + EXTRA_ATTEMPTS) {
            const message = `gave up after ${claimed.attempt - 1} attempts: the agents running this step stopped before finishing it`;
            attemptEnded(span, 'failed', message);
            return this.handOff(m, owned, { status: 'failed', output: { success: false, message } });
          }
          await this.execute(m, owned, maxAttempts, active, invoke, await secrets, fresh);
        });
      } finally {
        span?.end();
      }
    } finally {
      active.done();
      this.active.delete(active);
      release();
    }
  }

  /** Runs the handler for an owned attempt, then hands on, retries or gives the step back. */
  private async execute(m: JsMsg, owned: Owned, maxAttempts: number, active: ActiveStep, invoke: (payload: unknown) => Promise<unknown>, secrets: StepSecrets, unclaimed: boolean): Promise<void> {
    const { msg, step, attempt } = owned;
    const { id: agent, machine } = this.config.agent;
    // The start of an unclaimed attempt goes out once the handler is under way (at the end of
    // this turn of the event loop): off the critical path; a failure only loses the count.
    const startedSoon = unclaimed ? setImmediate(() => void this.runLog.started(msg, owned.by, new Date().toISOString()).catch(() => undefined)) : undefined;
    const logs = new StepLogWriter(this.logs, this.ctx.subjects, { runId: msg.runId, driver: step.driver, stepId: step.id, attempt }, secrets.mask);
    const timeoutMs = step.timeout ? step.timeout * 1000 : this.config.steps.defaultTimeoutMs;
    const startedAt = Date.now();
    logs.info(`${step.name || step.id}: attempt ${attempt} of ${maxAttempts} on agent ${agent} (machine ${machine})${msg.mode === 'cleanup' ? ', cleanup' : ''}`);

    const timer = setTimeout(() => active.abort('timeout', `timed out after ${timeoutMs / 1000}s`), timeoutMs);
    let output: StepOutput;
    const handled = this.onStep?.(step.driver);
    try {
      // Without its secrets a build could not mask them: fail closed, except for cleanup, which must run.
      if (secrets.problem && msg.mode === 'normal' && !step.always) throw new Error(secrets.problem);
      if (secrets.problem) logs.warn(`${secrets.problem}; running anyway because this is a cleanup step`);
      // Raced with the abort's grace: a handler that ignores its signal is no longer waited for.
      const result = await Promise.race([invoke(this.context(msg, step, attempt, logs, active.controller.signal, secrets.values)), active.abandoned]);
      output = maskDeep(toOutput(result, agent, machine), secrets.mask);
    } catch (err) {
      output = { success: false, message: secrets.mask(errorMessage(err)), agent, machine };
    } finally {
      clearTimeout(timer);
      if (startedSoon) clearImmediate(startedSoon);
    }
    handled?.(output.success ? 'succeeded' : 'failed');
    const durationMs = Date.now() - startedAt;

    if (active.reason === 'shutdown') {
      // Not a failure of the step, and not an attempt used up: given back for another agent.
      attemptEnded(owned.span, 'released', 'the agent shut down');
      logs.warn('agent is shutting down; the step goes back to the queue');
      await logs.flush();
      await this.records.stepRecord('release', msg, attempt, owned.by, owned.seq, { message: 'the agent shut down', durationMs });
      m.nak();
      return;
    }
    let outcome: StepOutcome;
    if (active.reason === 'cancelled') {
      outcome = stopOutcome(this.cancels.get(msg.runId) ?? { status: 'cancelled', message: 'the run was cancelled' });
      logs.warn(outcome.status === 'cancelled' ? 'cancelled' : `stopped: ${outcome.output.message}`);
    } else if (active.reason === 'timeout' && !output.success) {
      outcome = { status: 'failed', output: { ...output, message: `timed out after ${timeoutMs / 1000}s` } };
    } else {
      outcome = output.success ? { status: 'succeeded', output } : { status: 'failed', output };
    }

    if (outcome.status === 'failed' && attempt < maxAttempts) {
      const delay = retryDelayMs(attempt, this.config.steps.retryBackoffMs, this.config.steps.retryBackoffMaxMs);
      attemptEnded(owned.span, 'retry', outcome.output.message);
      logs.warn(`attempt ${attempt} failed: ${outcome.output.message ?? 'no message'}; retrying in ${(delay / 1000).toFixed(1)}s`);
      await logs.flush();
      const r = await this.records.stepRecord('retry', msg, attempt, owned.by, owned.seq, { message: outcome.output.message, retryInMs: delay, durationMs });
      if (r?.stored) m.nak(delay);
      else if (!r) m.nak(5_000);
      else this.log.warn(`run ${msg.runId}: step ${step.id} attempt ${attempt} was taken over or the run moved on; its retry is not recorded`);
      return;
    }
    attemptEnded(owned.span, outcome.status, outcome.status === 'cancelled' ? outcome.message : outcome.output.message);
    if (outcome.status === 'failed') logs.error(outcome.output.message ?? 'failed');
    // The hand-off first: it is what the next driver waits for; the step's last lines follow.
    // Not when it ends the run: the end-of-logs marker follows the run's end, and must come
    // after every line.
    if (!isLine(msg.pipeline.steps) || !planHandOff(msg, outcome).next) await logs.flush();
    const handedOff = this.handOff(m, owned, outcome, durationMs);
    const flushed = logs.flush();
    await handedOff;
    await flushed;
  }

  /** Stores the one record that moves the run on from an owned step, then acks. */
  private async handOff(m: JsMsg, owned: Owned, outcome: StepOutcome, durationMs?: number): Promise<void> {
    const { msg, step, attempt, by } = owned;
    // Its span is active during the write: the next step's work carries it as its traceparent header.
    const span = handOffSpan(msg, step, outcome.status);
    const r = await withSpan(span, () => this.records.handOff(msg, outcome, { attempt, agent: by.agent, machine: by.machine, durationMs, at: new Date().toISOString(), ...(owned.releases ? { released: true } : {}) }, owned.seq));
    handOffEnded(span, r);
    await this.settle(m, msg, step, r);
  }

  /** A normal step of a run being stopped: never started, recorded as skipped together with what follows. */
  private async skip(m: JsMsg, msg: StepMessage, by: RecordWriter, stop: StopOrder, first: { expect: number } | undefined): Promise<void> {
    const step = msg.pipeline.steps[msg.stepIndex];
    let expect = first?.expect;
    for (let i = 0; i < 3; i++) {
      if (expect === undefined) {
        const judged = await this.records.judge(msg, m.seq, m.info.timestampNanos / 1e6);
        if (!judged) return m.nak(5_000);
        if (!judged.run) return 'wait' in judged ? m.nak(this.config.agent.heartbeatMs) : ack(m);
        expect = judged.expect;
      }
      const r = await this.records.handOff(msg, stopOutcome(stop), { attempt: 0, at: new Date().toISOString(), as: 'skipped' }, expect);
      if (r?.stored === false) {
        expect = undefined;
        continue;
      }
      return this.settle(m, msg, step, r);
    }
    m.nak(5_000);
  }

  /** Acks a message whose hand-off is stored; otherwise leaves it to whoever moved the run on, or to a later delivery. */
  private async settle(m: JsMsg, msg: StepMessage, step: PipelineStep, r: Written | undefined): Promise<void> {
    if (r === undefined) {
      // NATS did not take it in time: a later delivery judges the log again.
      m.nak(5_000);
      return;
    }
    if (r.stored === false) {
      // The run moved on without this agent: another agent took the step over (its
      // delivery acks the message), or the run ended (a later delivery finds that and acks).
      this.log.warn(`run ${msg.runId}: step ${step.id}: its hand-off was refused: another agent took the step over, or the run moved on`);
      return;
    }
    ack(m);
  }

  /**
   * The values of the secrets the step's resource spec and config refer to, and the masker for
   * them: the values go to the handler (container-start puts them in the container) and every
   * log line and result is masked with them before it leaves.
   */
  private async stepSecrets(msg: StepMessage, step: PipelineStep): Promise<StepSecrets> {
    const names = secretRefs(msg.resource.spec, step.config);
    if (!names.length || !this.secrets) return { values: new Map(), mask: (l) => l };
    try {
      const values = await this.secrets.reveal(names);
      return { values, mask: buildMasker(values.values()) };
    } catch (err) {
      return { values: new Map(), mask: (l) => l, problem: `cannot read the run's secrets: ${errorMessage(err)}` };
    }
  }

  private context(msg: StepMessage, step: PipelineStep, attempt: number, log: StepLogWriter, signal: AbortSignal, secrets: ReadonlyMap<string, string> = new Map()): StepContext {
    const steps = msg.pipeline.steps;
    return {
      runId: msg.runId,
      pipeline: msg.pipeline.name,
      step,
      stepIndex: msg.stepIndex,
      attempt,
      mode: msg.mode,
      outcome: msg.outcome,
      resource: msg.resource,
      // `${{ steps.<id>.outputs.<key> }}` filled in from the outputs it was handed (a reference
      // that cannot be is thrown here, and fails the attempt with the reason).
      config: interpolateConfig(step.config ?? {}, msg.outputs),
      outputs: msg.outputs,
      outputOf: (idOrDriver: string) => {
        if (msg.outputs[idOrDriver] && steps.some((s) => s.id === idOrDriver)) return msg.outputs[idOrDriver];
        // The nearest step before this one (in a graph: that it needs, directly or not) run by that driver.
        const before = isLine(steps) ? steps.map((_, j) => msg.stepIndex - 1 - j).filter((j) => j >= 0) : ancestorsNearestFirst(steps, msg.stepIndex);
        for (const j of before) {
          if (steps[j].driver === idOrDriver && msg.outputs[steps[j].id]) return msg.outputs[steps[j].id];
        }
        return undefined;
      },
      agent: { id: this.config.agent.id, machine: this.config.agent.machine },
      log,
      signal,
      secrets,
      artifacts: this.stepArtifacts(msg.runId, step.id),
      caches: this.stepCaches(msg.runId),
    };
  }

  private stepCaches(runId: string): StepCaches {
    const store = () => {
      this.cacheStore ??= CacheStore.open(this.ctx).catch((err) => {
        this.cacheStore = undefined;
        throw err;
      });
      return this.cacheStore;
    };
    return {
      restore: async (key, restoreKeys, dir) => {
        const got = await (await store()).restore(key, restoreKeys, dir);
        this.storeMetrics?.cacheRestore(got.hit, got.hit === 'miss' ? 0 : got.size);
        return got;
      },
      save: async (key, paths, dir) => {
        const saved = await (await store()).save(key, paths, dir, runId);
        if (saved.saved) this.storeMetrics?.cacheSaved(saved.size);
        return saved;
      },
    };
  }

  private stepArtifacts(runId: string, stepId: string): StepArtifacts {
    const store = () => {
      this.artifactStore ??= ArtifactStore.open(this.ctx).catch((err) => {
        this.artifactStore = undefined;
        throw err;
      });
      return this.artifactStore;
    };
    return {
      upload: async (files) => {
        const kept = await (await store()).upload(runId, stepId, files);
        this.storeMetrics?.artifacts('up', kept.reduce((n, a) => n + a.size, 0));
        return kept;
      },
      list: async () => (await store()).list(runId),
      download: async (name, dir) => {
        const got = await (await store()).download(runId, name, dir);
        this.storeMetrics?.artifacts('down', got.size);
        return got;
      },
    };
  }

  /**
   * Records a message nobody can process, with the reason, then terminates it. When it is a
   * run's current work (the end of its log), the run is failed with the reason — and its
   * cleanup runs when the message could be read — so it never waits for work that will not come.
   */
  private async deadLetter(m: JsMsg, driver: string, reason: string, msg?: StepMessage): Promise<void> {
    const dl: DeadLetter = {
      driver,
      subject: m.subject,
      reason: m.data.length > DEAD_LETTER_PAYLOAD_BYTES ? `${reason} (payload of ${m.data.length} bytes; its first ${DEAD_LETTER_PAYLOAD_BYTES} are kept here)` : reason,
      agent: this.config.agent.id,
      payload: Buffer.from(m.data.subarray(0, DEAD_LETTER_PAYLOAD_BYTES)).toString('base64'),
      headers: headersToRecord(m.headers),
      streamSeq: m.seq,
      at: new Date().toISOString(),
    };
    this.log.warn(`dead-lettering message ${m.seq} on ${m.subject}: ${reason}`);
    try {
      await this.ctx.js.publish(this.ctx.subjects.deadLetter(driver), JSON.stringify(dl), { msgID: `dlq.${m.info.stream}.${m.seq}` });
    } catch (err) {
      this.log.error(`could not record the dead letter: ${errorMessage(err)}; handing it back`);
      m.nak(5_000);
      return;
    }
    if (msg) await this.failDeadLettered(m, msg, reason);
    m.term(reason);
  }

  private async failDeadLettered(m: JsMsg, msg: StepMessage, reason: string): Promise<void> {
    const { id: agent, machine } = this.config.agent;
    const outcome: StepOutcome = { status: 'failed', output: { success: false, message: `its step message could not be processed: ${reason}` } };
    const by = { attempt: 0, agent, machine, at: new Date().toISOString() };
    // Only if this message ends the run's log (fenced on its own sequence): otherwise the run has
    // moved on. A failure to write is left to the gateway's reconciler (the work leaves its queue).
    await this.runLog.failStep(msg, outcome, by, m.seq).catch((err) => this.log.warn(`run ${msg.runId}: could not fail it: ${errorMessage(err)}`));
  }
}

/** The connection's reconnects, as an async iterable. */
async function* reconnects(ctx: JetStreamContext): AsyncIterable<void> {
  for await (const s of ctx.nc.status()) if (s.type === 'reconnect') yield;
}

function stopOutcome(stop: StopOrder): StepOutcome {
  if (stop.status === 'failed') return { status: 'failed', output: { success: false, message: stop.message } };
  return stop.failFast ? { status: 'cancelled', message: stop.message, failFast: true } : { status: 'cancelled', message: stop.message };
}


function headersToRecord(h?: MsgHdrs): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (!h) return out;
  for (const k of h.keys()) out[k] = h.values(k);
  return out;
}

function toOutput(result: unknown, agent: string, machine: string): StepOutput {
  if (typeof result !== 'object' || result === null || typeof (result as StepResult).success !== 'boolean') {
    return { success: false, message: 'the driver returned no result ({success, message?, data?})', agent, machine };
  }
  const r = result as StepResult;
  return { success: r.success, message: r.message, data: r.data, agent, machine };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}


