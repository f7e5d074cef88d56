import { Logger } from '@nestjs/common';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import type { JsMsg } from '@nats-io/jetstream';
import {
  Headers,
  MESSAGE_VERSION,
  decodeRunEvent,
  decodeStepMessage,
  isTerminalRunStatus,
  type DeadLetter,
  type LogsEnd,
  type PipelineStep,
  type RunEvent,
  type StepMessage,
  type StepOutput,
} from '@conveyor/contracts';
import type { ConveyorConfig } from '@conveyor/config';
import { openAgentsBucket, openBuckets, type JetStreamContext } from '@conveyor/jetstream';
import { StepLogWriter } from '@conveyor/logs';
import { buildMasker, maskDeep, openSecretsBucket, secretRefs, SecretsStore } from '@conveyor/secrets';
import { MsgIds, planHandOff, stepHeaderValues, type StepOutcome } from '@conveyor/runs';
import { RunsStore } from '@conveyor/store';
import type { MessageProcessor } from '@conveyor/transport';
import { ActiveStep, ActiveSteps } from './active-steps';
import { CancelWatch, type StopOrder } from './cancel-watch';
import type { HandleStepOptions } from './handle-step.decorator';
import { Heartbeat } from './heartbeat';
import { retryDelayMs } from './backoff';
import type { StepContext, StepResult } from './step-context';

/** Redeliveries allowed beyond a step's own attempts when the agent running it died. */
const EXTRA_REDELIVERIES = 2;
/** Hand-off publishes are retried this long (e.g. across a NATS restart) before the message is handed back. */
const HAND_OFF_PATIENCE_MS = 60_000;
/** Tries (about 8 s in all) to read a redelivered step's recorded outcome before running it again. */
const FINISHED_LOOKUP_TRIES = 6;
/** A dead letter keeps this much of the payload: a record of a near-max_payload message must itself fit under max_payload. */
const DEAD_LETTER_PAYLOAD_BYTES = 64 * 1024;

/**
 * The step protocol every driver shares: decode, check for cancel, run the handler with a
 * timeout and in-progress acks, then hand on — publish the next step (or the run's end)
 * and the step's events, wait for JetStream to store them, and only then ack. A crash at
 * any point leaves the message unacked, so another copy of the driver takes it; the
 * deterministic message ids make the repeated hand-off a no-op.
 */
export class StepRunner implements MessageProcessor {
  private ctx!: JetStreamContext;
  private runs!: RunsStore;
  private readonly active = new ActiveSteps();
  private heartbeat?: Heartbeat;
  private secrets?: SecretsStore;
  private readonly cancels = new CancelWatch((runId, order) => {
    const n = this.active.cancelRun(runId, order.message);
    if (n) this.log.log(`run ${runId}: cancelled, aborting ${n} step(s)`);
  });
  private readonly log = new Logger('StepRunner');

  constructor(
    private readonly config: ConveyorConfig,
    /** Told when a handler starts; the returned function, how it ended (e.g. the agent's metrics). */
    private readonly onStep?: (driver: string) => (outcome: 'succeeded' | 'failed') => void,
  ) {}

  async init(ctx: JetStreamContext, drivers: string[]): Promise<void> {
    this.ctx = ctx;
    const buckets = await openBuckets(ctx);
    this.runs = new RunsStore(buckets);
    this.secrets = new SecretsStore(await openSecretsBucket(ctx), this.config.secretKey);
    await this.cancels.start(ctx, buckets.cancels);
    this.heartbeat = new Heartbeat(await openAgentsBucket(ctx), this.config, drivers, () => this.active.list());
    await this.heartbeat.start();
  }

  abortAll(reason: string): void {
    this.active.abortAll('shutdown', reason);
  }

  async close(): Promise<void> {
    this.cancels.stop();
    await this.heartbeat?.stop();
  }

  async process(m: JsMsg, driver: string, invoke: (payload: unknown) => Promise<unknown>, extras: HandleStepOptions = {}): Promise<void> {
    const decoded = decodeStepMessage(m.data);
    if (!decoded.ok) return this.deadLetter(m, driver, decoded.reason);
    let msg = decoded.value;
    const step = msg.pipeline.steps[msg.stepIndex];
    if (step.driver !== driver) {
      return this.deadLetter(m, driver, `step "${step.id}" is for driver "${step.driver}", not "${driver}"`);
    }
    const attempt = m.info.deliveryCount;
    // A pinning step pins the run to this machine whatever its outcome: what it made here
    // (a container) is cleaned up here.
    if (extras.pinsMachine && !msg.machine) msg = { ...msg, machine: this.config.agent.machine };
    // Registered before the stop orders are read: a cancel is either known already or
    // reaches this step through the watch, never neither.
    const active = new ActiveStep(msg.runId, step.id, driver, msg.mode === 'normal' && !step.always);
    this.active.add(active);
    try {
      let stop = this.cancels.get(msg.runId);
      if (attempt > 1) {
        // A redelivery may be a stale copy whose hand-off already happened (its agent died
        // between publishing and acking) and whose run has ended since. Only redeliveries
        // pay this read.
        const run = (await this.runs.get(msg.runId))?.value;
        if (run?.status === 'succeeded') {
          await ackAck(m);
          return;
        }
        if (run && isTerminalRunStatus(run.status)) stop ??= { status: run.status as StopOrder['status'], message: run.message ?? `the run ${run.status}` };
        if (run?.cancelRequested) stop ??= { status: 'cancelled', message: 'the run was cancelled' };
        // Its agent may have stopped after the hand-off but before the ack. Then the step is
        // not run again: its hand-off is repeated from the recorded outcome, at once, so the
        // repeat falls inside the deduplication window however long the step itself took.
        const finished = await this.finishedBefore(msg, m);
        if (finished) {
          if (Date.now() - finished.at > this.config.steps.dedupeWindowMs / 2) {
            // Too late to repeat: the streams may have forgotten the hand-off's ids, so a repeat
            // could start the next step twice. It was stored then (it is sent before the events).
            this.log.warn(`run ${msg.runId}: step ${step.id} finished (${finished.outcome.status}) long before this redelivery; acking it`);
            await ackAck(m);
            return;
          }
          this.log.log(`run ${msg.runId}: step ${step.id} finished (${finished.outcome.status}) on attempt ${finished.attempt} before its agent stopped; handing on again without running it`);
          if (extras.pinsMachine && finished.machine) msg = { ...msg, machine: finished.machine };
          return await this.handOff(m, msg, finished.attempt, finished.outcome);
        }
      }
      if (msg.mode === 'normal' && stop) {
        if (!step.always) {
          // Not started: this step and the normal ones after it are skipped; cleanup steps run.
          return await this.handOff(m, msg, attempt, stopOutcome(stop), undefined, 'skipped');
        }
        msg = { ...msg, mode: 'cleanup', outcome: { status: stop.status, stepId: step.id, message: stop.message } };
      }
      const maxAttempts = (step.retries ?? this.config.steps.defaultRetries) + 1;
      if (attempt > maxAttempts + EXTRA_REDELIVERIES) {
        const message = `gave up after ${attempt - 1} attempts: the agents running this step stopped before finishing it`;
        return await this.handOff(m, msg, attempt, { status: 'failed', output: { success: false, message } });
      }
      await this.execute(m, msg, step, attempt, maxAttempts, active, invoke);
    } finally {
      this.active.delete(active);
    }
  }

  private async execute(
    m: JsMsg,
    msg: StepMessage,
    step: PipelineStep,
    attempt: number,
    maxAttempts: number,
    active: ActiveStep,
    invoke: (payload: unknown) => Promise<unknown>,
  ): Promise<void> {
    const { id: agent, machine } = this.config.agent;
    // Secrets the run refers to: their values go to the handler (container-start puts them in
    // the container) and every log line and result is masked with them before it leaves.
    const secrets = await this.stepSecrets(msg, step);
    const logs = new StepLogWriter(this.ctx.js, this.ctx.subjects, { runId: msg.runId, driver: step.driver, stepId: step.id, attempt }, secrets.mask);
    // The `started` event goes out once the handler is under way (at the end of this turn
    // of the event loop), not before: the handler's start is the critical path. A handler
    // that is done sooner hands off first, and the event follows the next step's message.
    // Awaited only at hand-off. A failure before then (e.g. while NATS elects a new stream
    // leader) must not be an unhandled rejection, which would end the agent's process, nor
    // fail every hand-off retry: `started()` publishes it again (same id, stored once).
    const startedAtIso = new Date().toISOString();
    let firstStarted: Promise<unknown> | undefined;
    const publishStarted = (): Promise<unknown> => {
      if (!firstStarted) {
        firstStarted = this.publishStepEvent(msg, attempt, 'started', { at: startedAtIso });
        firstStarted.catch(() => undefined);
      }
      return firstStarted;
    };
    const startedSoon = setImmediate(publishStarted);
    const started = (): Promise<unknown> => publishStarted().catch(() => this.publishStepEvent(msg, attempt, 'started', { at: startedAtIso }));
    const timeoutMs = step.timeout ? step.timeout * 1000 : this.config.steps.defaultTimeoutMs;
    const startedAt = Date.now();
    logs.info(`${step.name || step.id}: attempt ${attempt} of ${maxAttempts} on agent ${agent} (machine ${machine})${msg.mode === 'cleanup' ? ', cleanup' : ''}`);

    const heartbeat = setInterval(() => keepAlive(m), Math.max(1000, Math.floor(this.config.steps.ackWaitMs / 3)));
    const timer = setTimeout(() => active.abort('timeout', `timed out after ${timeoutMs / 1000}s`), timeoutMs);
    let output: StepOutput;
    const handled = this.onStep?.(step.driver);
    try {
      // Without its secrets a build could not mask them: fail closed, except for cleanup, which must run.
      if (secrets.problem && msg.mode === 'normal' && !step.always) throw new Error(secrets.problem);
      if (secrets.problem) logs.warn(`${secrets.problem}; running anyway because this is a cleanup step`);
      const result = await invoke(this.context(msg, step, attempt, logs, active.controller.signal, secrets.values));
      output = maskDeep(toOutput(result, agent, machine), secrets.mask);
    } catch (err) {
      output = { success: false, message: secrets.mask(errorMessage(err)), agent, machine };
    } finally {
      clearInterval(heartbeat);
      clearTimeout(timer);
      clearImmediate(startedSoon);
    }
    handled?.(output.success ? 'succeeded' : 'failed');

    if (active.reason === 'shutdown') {
      // Not a failure of the step: hand the message back at once for another agent.
      logs.warn('agent is shutting down; the step goes back to the queue');
      await logs.flush();
      await firstStarted?.catch(() => undefined);
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
    const durationMs = Date.now() - startedAt;

    if (outcome.status === 'failed' && attempt < maxAttempts) {
      const delay = retryDelayMs(attempt, this.config.steps.retryBackoffMs, this.config.steps.retryBackoffMaxMs);
      logs.warn(`attempt ${attempt} failed: ${outcome.output.message ?? 'no message'}; retrying in ${(delay / 1000).toFixed(1)}s`);
      await logs.flush();
      const at = new Date().toISOString();
      await this.persist(m, () => Promise.all([started(), this.publishStepEvent(msg, attempt, 'retrying', { message: outcome.output.message, retryInMs: delay, durationMs, at })]));
      m.nak(delay);
      return;
    }
    if (outcome.status === 'failed') logs.error(outcome.output.message ?? 'failed');
    // The step's last lines go out right after the next step's message (the critical path)
    // and before the run's end marker: flush() sends synchronously, on the same connection.
    let flushed: Promise<unknown> | undefined;
    await this.handOff(m, msg, attempt, outcome, started, undefined, durationMs, () => (flushed ??= logs.flush()));
    await flushed;
  }

  /**
   * Publishes everything that follows this step, waits until JetStream stored all of it,
   * then acks. `selfKind` overrides the kind of this step's own event (a step that never
   * started because the run was cancelled is `skipped`).
   */
  private async handOff(
    m: JsMsg,
    msg: StepMessage,
    attempt: number,
    outcome: StepOutcome,
    started?: () => Promise<unknown>,
    selfKind?: 'skipped',
    durationMs?: number,
    /** Called once the next step's message is sent, before the events and the run's end marker. */
    afterNext?: () => void,
  ): Promise<void> {
    const { js, subjects } = this.ctx;
    const plan = planHandOff(msg, outcome);
    const steps = msg.pipeline.steps;
    const kind = selfKind ?? outcome.status;
    const own = outcome.status === 'cancelled' ? { message: outcome.message } : { message: outcome.output.message, data: outcome.output.data };
    const next = plan.next;
    // One time for everything this hand-off records, however often it is published.
    const at = new Date().toISOString();
    const publishNext = (): Promise<unknown> =>
      next
        ? js.publish(subjects.step(steps[next.stepIndex].driver, next.machine), JSON.stringify(next), {
            msgID: MsgIds.step(msg.runId, next.stepIndex),
            headers: stepHeaders(next),
          })
        : Promise.resolve();
    const publishRest = (): Promise<unknown>[] => {
      // `started` (when the handler ended before it went out) before the outcome: one
      // connection, one stream, so readers of the stream see them in this order.
      const out: Promise<unknown>[] = started ? [started()] : [];
      out.push(this.publishStepEvent(msg, attempt, kind, { ...own, durationMs, at }));
      for (const j of plan.skipped) out.push(this.publishStepEvent({ ...msg, stepIndex: j }, 0, 'skipped', { at }));
      if (plan.final) {
        const end: LogsEnd = { runId: msg.runId, status: plan.final.status, at };
        out.push(this.publishRunEvent(msg, plan.final.status, plan.final.message, at));
        out.push(js.publish(subjects.logsEnd(msg.runId), JSON.stringify(end), { msgID: `${msg.runId}.logs.end` }));
      }
      return out;
    };
    const stored = await this.persist(m, () => {
      // The next step first: it is what the next driver waits for. The events follow in the
      // same write, so the server stores them before the next driver can say anything (the
      // events stream tells each run's story in order).
      const nextStored = publishNext();
      afterNext?.();
      return Promise.all([nextStored, ...publishRest()]);
    });
    if (!stored) {
      // NATS did not take the hand-off in time: give the message back; the redelivery
      // repeats the step (drivers are idempotent) and the ids make the hand-off happen once.
      m.nak(5_000);
      return;
    }
    await ackAck(m);
  }

  /**
   * This step's outcome as its own hand-off recorded it in the events stream, if it got that
   * far. `skipped` is not looked for: a skipped step ran nothing, and the stop order that
   * skipped it is still there to skip it again.
   */
  private async finishedBefore(msg: StepMessage, m: JsMsg): Promise<{ outcome: StepOutcome; attempt: number; machine?: string; at: number } | undefined> {
    const { jsm, subjects } = this.ctx;
    const stepId = msg.pipeline.steps[msg.stepIndex].id;
    // A redelivery often comes right after a failover: the events stream may be electing a
    // leader. Asked again for a while before the step is run again on not knowing.
    const lookup = async (kind: 'succeeded' | 'failed' | 'cancelled') => {
      const query = { last_by_subj: subjects.stepEvent(msg.runId, stepId, kind) };
      for (let i = 0; ; i++) {
        try {
          return await jsm.streams.getMessage(subjects.eventsStream, query);
        } catch (err) {
          if (i >= FINISHED_LOOKUP_TRIES - 1) {
            this.log.warn(`run ${msg.runId}: cannot tell whether step ${stepId} finished before (${errorMessage(err)}); running it again`);
            return null;
          }
          // Keep the message ours meanwhile, or it is redelivered to another agent.
          keepAlive(m);
          await new Promise((r) => setTimeout(r, 250 * 2 ** i));
        }
      }
    };
    const found = await Promise.all((['succeeded', 'failed', 'cancelled'] as const).map(lookup));
    for (const stored of found) {
      const decoded = stored ? decodeRunEvent(stored.data) : undefined;
      // Only an agent's own outcome counts: the gateway's watchdog also records a `failed`
      // step (with no agent) when it gives up on work no agent could take, and that step
      // (a cleanup step, say) must still run when an agent comes.
      if (!stored || !decoded?.ok || decoded.value.scope !== 'step' || !decoded.value.agent) continue;
      const e = decoded.value;
      const output: StepOutput = { success: e.kind === 'succeeded', message: e.message, data: e.data, agent: e.agent, machine: e.machine };
      const outcome: StepOutcome = e.kind === 'cancelled' ? { status: 'cancelled', message: e.message ?? 'the run was cancelled' } : { status: e.kind === 'succeeded' ? 'succeeded' : 'failed', output };
      return { outcome, attempt: e.attempt ?? 1, machine: e.machine, at: stored.time.getTime() };
    }
    return undefined;
  }

  /** Retries a set of idempotent publishes (they carry message ids) until stored, bounded in time. */
  private async persist(m: JsMsg, publish: () => Promise<unknown>): Promise<boolean> {
    const deadline = Date.now() + HAND_OFF_PATIENCE_MS;
    for (let i = 1; ; i++) {
      try {
        await publish();
        return true;
      } catch (err) {
        if (Date.now() > deadline) {
          this.log.error(`could not store the hand-off after ${i} tries: ${errorMessage(err)}`);
          return false;
        }
        // The message stays ours while we try: redelivered now, another agent would run the
        // step again before this hand-off is stored, and not know it had finished.
        keepAlive(m);
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** i)));
      }
    }
  }

  private publishStepEvent(msg: StepMessage, attempt: number, kind: RunEvent['kind'], extra: Partial<RunEvent>): Promise<unknown> {
    const step = msg.pipeline.steps[msg.stepIndex];
    const e: RunEvent = {
      v: MESSAGE_VERSION,
      runId: msg.runId,
      scope: 'step',
      kind,
      stepId: step.id,
      stepIndex: msg.stepIndex,
      attempt,
      ...(kind === 'skipped' ? {} : { agent: this.config.agent.id, machine: this.config.agent.machine }),
      // A republished event (a retry, a repeated hand-off) keeps the time it was made with.
      at: new Date().toISOString(),
      ...extra,
    };
    const headers = stepHeaders(msg);
    headers.set(Headers.Attempt, String(attempt));
    return this.ctx.js.publish(this.ctx.subjects.stepEvent(msg.runId, step.id, kind), JSON.stringify(e), {
      msgID: MsgIds.stepEvent(msg.runId, msg.stepIndex, attempt, kind),
      headers,
    });
  }

  private publishRunEvent(msg: StepMessage, kind: RunEvent['kind'], message: string | undefined, at: string): Promise<unknown> {
    const e: RunEvent = { v: MESSAGE_VERSION, runId: msg.runId, scope: 'run', kind, message, at };
    return this.ctx.js.publish(this.ctx.subjects.runEvent(msg.runId, kind), JSON.stringify(e), {
      msgID: MsgIds.runEvent(msg.runId, kind),
    });
  }

  /** The values of the secrets the step's resource spec and config refer to, and the masker for them. */
  private async stepSecrets(msg: StepMessage, step: PipelineStep): Promise<{ values: ReadonlyMap<string, string>; mask: (line: string) => string; problem?: string }> {
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
      config: step.config ?? {},
      outputs: msg.outputs,
      outputOf: (driver: string) => {
        for (let j = msg.stepIndex - 1; j >= 0; j--) {
          if (steps[j].driver === driver && msg.outputs[steps[j].id]) return msg.outputs[steps[j].id];
        }
        return undefined;
      },
      agent: { id: this.config.agent.id, machine: this.config.agent.machine },
      log,
      signal,
      secrets,
    };
  }

  /** Records a message nobody can process, with the reason, then terminates it. */
  private async deadLetter(m: JsMsg, driver: string, reason: string): Promise<void> {
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
    const stored = await this.persist(m, () =>
      this.ctx.js.publish(this.ctx.subjects.deadLetter(driver), JSON.stringify(dl), { msgID: `dlq.${m.info.stream}.${m.seq}` }),
    );
    if (stored) m.term();
    else m.nak(5_000);
  }
}

function stopOutcome(stop: StopOrder): StepOutcome {
  return stop.status === 'cancelled' ? { status: 'cancelled', message: stop.message } : { status: 'failed', output: { success: false, message: stop.message } };
}

function stepHeaders(msg: StepMessage): MsgHdrs {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(stepHeaderValues(msg))) h.set(k, v);
  return h;
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

/** An in-progress ack; on a connection that is closing it is simply not sent. */
function keepAlive(m: JsMsg): void {
  try {
    m.working();
  } catch {
    // Redelivery then decides; every path after it is idempotent.
  }
}

/** Waits for the server to confirm the ack, so a lost ack cannot make a finished step run again. */
async function ackAck(m: JsMsg): Promise<void> {
  try {
    await m.ackAck({ timeout: 5_000 });
  } catch {
    // The hand-off is stored; at worst the step is redelivered and its repeat is deduplicated.
  }
}
