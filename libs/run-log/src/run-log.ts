import { Logger } from '@nestjs/common';
import { headers as natsHeaders, InvalidArgumentError, PermissionViolationError, type MsgHdrs } from '@nats-io/transport-node';
import { JetStreamApiError, type StoredMsg } from '@nats-io/jetstream';
import {
  Headers,
  MESSAGE_VERSION,
  decodeRunRecord,
  type RunEnd,
  type RunRecord,
  type RunRecordSubject,
  type StepMessage,
  type StepRecord,
} from '@conveyor/contracts';
import { ensureWorkConsumer, type JetStreamContext } from '@conveyor/jetstream';
import { MsgIds, endOnly, planTransition, stepHeaderValues, type EndedBy, type LogHead, type StepOutcome, type Transition } from '@conveyor/runs';

/** How long a process trusts that a driver's consumer it made sure of still exists. */
const CONSUMER_RECHECK_MS = 60_000;

/** JetStream's answer to a publish whose expected last sequence is not the stream's. */
const WRONG_LAST_SEQUENCE = 10071;

export type Appended =
  /** Stored at `seq`: the run's log now ends with this record. */
  | { stored: true; seq: number }
  /** Refused: the run's log no longer ends where the writer read it. Someone else moved the run on. */
  | { stored: false };

/** A write that can never be stored as it is (too large, not permitted): retrying it cannot help. */
export class UnstorableRecordError extends Error {}

/** Who writes a step record: an agent, about one delivery of the step's message. */
export interface RecordWriter {
  agent: string;
  machine: string;
  /** The JetStream delivery of the step message this record is about (tells retries of one write from another delivery's). */
  delivery: number;
}

/**
 * The one writer of runs' logs. A run's log is every record that moves the run on — its
 * steps' work, each attempt's claim, retries, releases, its end — on the subjects
 * `<prefix>.steps.<run>.…` of the runs stream. Every record is appended only if the log
 * still ends at the sequence its writer read (`Nats-Expected-Last-Subject-Sequence` against
 * the whole run, `…-Subject: <prefix>.steps.<run>.>`), so the server itself decides every
 * race: two agents finishing the same step, an agent whose in-progress acks lapsed while
 * another took the step over, the gateway giving up on a step as its agent finishes it.
 * Exactly one of them is stored; the others learn it from the refusal.
 *
 * One record is both a step's outcome and what follows (the next step's work, or the run's
 * end): a hand-off is stored whole or not at all.
 *
 * Used by the gateway (a run's first step), the driver SDK (claims and hand-offs) and the
 * gateway's watchdog (giving up on work no agent can take), so all three write the same
 * records, headers and message ids.
 */
export class RunLog {
  private readonly log = new Logger(RunLog.name);
  /** Drivers' consumers this process made sure of, and when (see ensureWorkConsumer). */
  private readonly consumers = new Map<string, { made: Promise<void>; at: number }>();

  constructor(private readonly ctx: JetStreamContext) {}

  /** The record at the end of a run's log; undefined when the run has no records. */
  async head(runId: string): Promise<LogHead | undefined> {
    const stored = await this.last(this.ctx.subjects.runLog(runId));
    return stored ? this.toHead(stored) : undefined;
  }

  /** The first record of a run's log: its first step's work, which describes the whole run. */
  async first(runId: string): Promise<RunRecord | undefined> {
    const stored = await this.ctx.jsm.direct.getMessage(this.ctx.subjects.runsStream, { next_by_subj: this.ctx.subjects.runLog(runId), seq: 1 }).catch(() => null);
    const where = stored ? this.ctx.subjects.parseRunRecord(stored.subject) : undefined;
    const decoded = stored && where ? decodeRunRecord(where, stored.data) : undefined;
    return decoded?.ok ? decoded.value : undefined;
  }

  /** The last record on `subject` (of one run's log), decoded: e.g. a step's waiting work, to give up on it. */
  async lastRecord(subject: string): Promise<{ seq: number; record: RunRecord } | undefined> {
    const stored = await this.last(subject);
    if (!stored) return undefined;
    const where = this.ctx.subjects.parseRunRecord(stored.subject);
    const decoded = where ? decodeRunRecord(where, stored.data) : undefined;
    return decoded?.ok ? { seq: stored.seq, record: decoded.value } : undefined;
  }

  /**
   * The last work record of a step: its stream sequence and subject, and the message when it
   * can be read (a message of another version, or a damaged one, cannot).
   */
  async stepWork(runId: string, stepId: string): Promise<{ seq: number; at: Extract<RunRecordSubject, { kind: 'work' }>; msg?: StepMessage } | undefined> {
    const stored = await this.last(this.ctx.subjects.stepWork(runId, stepId));
    const at = stored ? this.ctx.subjects.parseRunRecord(stored.subject) : undefined;
    if (!stored || at?.kind !== 'work') return undefined;
    const decoded = decodeRunRecord(at, stored.data);
    return { seq: stored.seq, at, msg: decoded.ok && decoded.value.kind === 'work' ? decoded.value.msg : undefined };
  }

  /** A run's first record: its first step's work, stored only while the run has no records at all. */
  start(msg: StepMessage, timeoutMs?: number): Promise<Appended> {
    return this.writeTransition({ kind: 'work', msg }, 0, timeoutMs);
  }

  /** A claim, retry or release of a step, by an agent, on a log that ends at `expect`. */
  step(
    kind: Exclude<StepRecord['kind'], 'started'>,
    msg: StepMessage,
    attempt: number,
    by: RecordWriter,
    expect: number,
    extra: Pick<StepRecord, 'message' | 'retryInMs' | 'durationMs'> & { at?: string } = {},
    timeoutMs?: number,
  ): Promise<Appended> {
    const step = msg.pipeline.steps[msg.stepIndex];
    const record: StepRecord = {
      v: MESSAGE_VERSION,
      kind,
      runId: msg.runId,
      stepIndex: msg.stepIndex,
      stepId: step.id,
      attempt,
      agent: by.agent,
      machine: by.machine,
      ...extra,
      at: extra.at ?? new Date().toISOString(),
    };
    const h = this.headersOf(msg);
    h.set(Headers.Attempt, String(attempt));
    h.set(Headers.Agent, by.agent);
    return this.append(
      msg.runId,
      this.ctx.subjects.stepRecord(msg.runId, step.id, kind),
      record,
      MsgIds.stepRecord(msg.runId, msg.stepIndex, kind, attempt, by.agent, by.delivery),
      h,
      expect,
      timeoutMs,
    );
  }

  /**
   * An agent started the first delivery of a step. Recorded beside the run's log, not in it:
   * it moves no run on, so it costs the hand-off nothing and fences nobody out. An agent that
   * takes the step over later reads it to count the attempt.
   */
  started(msg: StepMessage, by: RecordWriter, at: string): Promise<unknown> {
    const step = msg.pipeline.steps[msg.stepIndex];
    const record: StepRecord = { v: MESSAGE_VERSION, kind: 'started', runId: msg.runId, stepIndex: msg.stepIndex, stepId: step.id, attempt: 1, agent: by.agent, machine: by.machine, at };
    const h = this.headersOf(msg);
    h.set(Headers.Attempt, '1');
    h.set(Headers.Agent, by.agent);
    return this.ctx.js.publish(this.ctx.subjects.stepStarted(msg.runId, step.id), JSON.stringify(record), {
      msgID: MsgIds.stepRecord(msg.runId, msg.stepIndex, 'started', 1, by.agent, by.delivery),
      headers: h,
    });
  }

  /** The last first-delivery start recorded for a step, if any: its agent, and when the server stored it. */
  async lastStarted(runId: string, stepId: string): Promise<{ agent: string; storedAt: number } | undefined> {
    const stored = await this.last(this.ctx.subjects.stepStarted(runId, stepId));
    if (!stored) return undefined;
    const decoded = decodeRunRecord({ kind: 'started', runId, stepId }, stored.data);
    return decoded.ok && decoded.value.kind === 'started' ? { agent: decoded.value.record.agent, storedAt: stored.time.getTime() } : undefined;
  }

  /**
   * Removes a step's work that a gateway moved the run past (gave up on, or skipped for a
   * cancel), so that no agent takes it for fresh work later: the record that superseded it
   * says how the step ended. Best effort: an agent that gets it anyway runs it, and its hand-off
   * is refused.
   */
  async withdraw(seq: number): Promise<void> {
    await this.ctx.jsm.streams.deleteMessage(this.ctx.subjects.runsStream, seq, false).catch(() => undefined);
  }

  /** A hand-off: the next step's work (carrying how this step ended) or the run's end. */
  async writeTransition(t: Transition, expect: number, timeoutMs?: number): Promise<Appended> {
    if (t.kind === 'work') {
      const { msg } = t;
      const step = msg.pipeline.steps[msg.stepIndex];
      // Made sure of beside the write, never before it: a hand-off must not wait on the
      // JetStream API, which a busy server answers late (seen in chaos: a new agent's first
      // hand-offs stalled 5 s on it). Work stored before its consumer is made is still
      // delivered (deliver policy all); a consumer that could not be made is made by the
      // gateway's reconciler.
      this.consumerOf(step.driver, msg.machine);
      return this.append(
        msg.runId,
        this.ctx.subjects.work(msg.runId, step.id, step.driver, msg.machine),
        msg,
        MsgIds.work(msg.runId, msg.stepIndex, msg.mode),
        this.headersOf(msg),
        expect,
        timeoutMs,
      );
    }
    const end: RunEnd = t.end;
    const h = natsHeaders();
    h.set(Headers.RunId, end.runId);
    return this.append(end.runId, this.ctx.subjects.runEnd(end.runId), end, MsgIds.end(end.runId), h, expect, timeoutMs);
  }

  /**
   * Fails `msg`'s step with `outcome` and moves the run on to its cleanup steps; when even
   * their work cannot be stored (too large, not permitted), ends the run at once with a record
   * small enough for any server. Fenced on `expect` like every transition.
   */
  async failStep(msg: StepMessage, outcome: StepOutcome, by: EndedBy, expect: number): Promise<Appended> {
    try {
      return await this.writeTransition(planTransition(msg, outcome, by), expect);
    } catch (err) {
      if (!(err instanceof UnstorableRecordError)) throw err;
      return this.writeTransition(endOnly(msg, outcome, by), expect);
    }
  }

  /** Makes sure of a driver's consumer unless it was made sure of lately; a failure is tried again by the next hand-off to it. */
  private consumerOf(driver: string, machine?: string): void {
    const key = `${driver}_${machine ?? ''}`;
    const known = this.consumers.get(key);
    // Checked again now and then: the server removes a gone machine's consumers.
    if (known && Date.now() - known.at < CONSUMER_RECHECK_MS) return;
    const entry = { made: ensureWorkConsumer(this.ctx, driver, machine), at: Date.now() };
    this.consumers.set(key, entry);
    entry.made.catch((err: unknown) => {
      this.consumers.delete(key);
      this.log.warn(`could not make sure of the consumer of driver "${driver}"${machine ? ` on "${machine}"` : ''}: ${errorMessage(err)} (tried again at the next hand-off to it; the gateway's reconciler makes a missing one)`);
    });
  }

  private async append(runId: string, subject: string, body: object, msgId: string, h: MsgHdrs, expect: number, timeoutMs?: number): Promise<Appended> {
    h.set('Nats-Expected-Last-Subject-Sequence', String(expect));
    h.set('Nats-Expected-Last-Subject-Sequence-Subject', this.ctx.subjects.runLog(runId));
    const payload = JSON.stringify(body);
    try {
      const ack = await this.ctx.js.publish(subject, payload, { msgID: msgId, headers: h, timeout: timeoutMs });
      // The expectation held and the id was seen before: a retry of a write that was stored.
      // Stored only if that earlier write is still the end of the log.
      if (ack.duplicate) return (await this.isOurs(runId, msgId)) ? { stored: true, seq: ack.seq } : { stored: false };
      return { stored: true, seq: ack.seq };
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === WRONG_LAST_SEQUENCE) {
        // Refused: either someone else moved the run on, or an earlier try of this very write
        // was stored and its acknowledgement lost. The id at the end of the log tells which.
        const head = await this.last(this.ctx.subjects.runLog(runId));
        return head && head.header?.get('Nats-Msg-Id') === msgId ? { stored: true, seq: head.seq } : { stored: false };
      }
      if (isUnstorable(err)) throw new UnstorableRecordError(`${errorMessage(err)} (a ${Buffer.byteLength(payload)}-byte record on ${subject})`);
      throw err;
    }
  }

  private async isOurs(runId: string, msgId: string): Promise<boolean> {
    const head = await this.last(this.ctx.subjects.runLog(runId));
    return head?.header?.get('Nats-Msg-Id') === msgId;
  }

  private async last(subject: string): Promise<StoredMsg | undefined> {
    try {
      return (await this.ctx.jsm.streams.getMessage(this.ctx.subjects.runsStream, { last_by_subj: subject })) ?? undefined;
    } catch (err) {
      if (err instanceof JetStreamApiError && (err.status === 404 || err.code === 10037)) return undefined;
      throw err;
    }
  }

  private toHead(stored: StoredMsg): LogHead {
    const at = this.ctx.subjects.parseRunRecord(stored.subject);
    if (!at) return { seq: stored.seq, at: { kind: 'end', runId: '' } };
    const decoded = decodeRunRecord(at, stored.data);
    const head: LogHead = { seq: stored.seq, at, storedAt: stored.time.getTime() };
    if (!decoded.ok) return head;
    const r = decoded.value;
    if (r.kind === 'work') head.fromStepId = r.msg.from?.stepId;
    else if (r.kind === 'end') head.fromStepId = r.end.from?.stepId;
    else {
      head.attempt = r.record.attempt;
      head.agent = r.record.agent;
    }
    return head;
  }

  private headersOf(msg: StepMessage): MsgHdrs {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(stepHeaderValues(msg))) h.set(k, v);
    return h;
  }
}

/** Errors no retry can mend: the record is larger than the server's max_payload, or the writer may not publish there. */
export function isUnstorable(err: unknown): boolean {
  if (err instanceof InvalidArgumentError && /max_payload/i.test(err.message)) return true;
  if (err instanceof PermissionViolationError) return true;
  if (err instanceof JetStreamApiError) return err.code === 10054 /* message size exceeds maximum allowed */;
  return false;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
