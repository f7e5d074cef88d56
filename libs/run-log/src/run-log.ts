import { Logger } from '@nestjs/common';
import { headers as natsHeaders, InvalidArgumentError, PermissionViolationError, type MsgHdrs } from '@nats-io/transport-node';
import { JetStreamApiError, type StoredMsg } from '@nats-io/jetstream';
import {
  APPROVAL_DRIVER,
  Headers,
  MESSAGE_VERSION,
  PROTOCOL_VERSION,
  decodeRunRecord,
  type RunEnd,
  type RunRecord,
  type RunRecordSubject,
  type StepMessage,
  type StepRecord,
  type StepDone,
  type StopOrder,
} from '@conveyor/contracts';
import type { KV } from '@nats-io/kv';
import { ensureWorkConsumer, isWrongLastSequence, openCancelsBucket, type JetStreamContext } from '@conveyor/jetstream';
import {
  MsgIds,
  endOnly,
  graphRoots,
  isLine,
  planGraphFollowUp,
  planTransition,
  stepDone,
  stepEnded,
  stepHeaderValues,
  type EndedBy,
  type LogHead,
  type StepOutcome,
  type StepView,
  type Transition,
} from '@conveyor/runs';
import { injectTraceparent } from '@conveyor/tracing';

/** How long a process trusts that a driver's consumer it made sure of still exists. */
const CONSUMER_RECHECK_MS = 60_000;

/** A graph run as its log stands: whether it ended, and every step's state and last record (at `headSeq`, 0 for none). */
export interface GraphState {
  ended: boolean;
  steps: Array<StepView & { head?: LogHead; headSeq: number }>;
}

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
  /** The cancels bucket, for a graph's fail-fast stop orders. */
  private cancels?: Promise<KV>;
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

  /**
   * A run's first record: its first step's work, stored only while the run has no records at all.
   * A graph's other first steps (every step that needs none) follow at once (see settle), each
   * written once.
   */
  async start(msg: StepMessage, timeoutMs?: number): Promise<Appended> {
    if (isLine(msg.pipeline.steps)) return this.writeTransition({ kind: 'work', msg }, 0, timeoutMs);
    // A graph's first record: the work of its first step that runs, as planned from nothing (a
    // first step's condition may skip it); or, when none does, the first of those ends.
    const plan = planGraphFollowUp(msg, msg.pipeline.steps.map(() => ({ state: 'waiting' as const })), msg.createdAt);
    const first = plan.records.find((r) => r.kind === 'work') ?? plan.records[0];
    if (first.kind === 'end') throw new Error(`run ${msg.runId}: a graph cannot end before it starts`);
    // Fenced on the whole run at 0, as a line's first record: a second start is refused.
    const r = first.kind === 'work' ? await this.writeTransition({ kind: 'work', msg: first.msg }, 0, timeoutMs) : await this.writeDone(first.done, `${msg.runId}.${first.done.from.stepIndex}.skip`, 0, timeoutMs, this.ctx.subjects.runLog(msg.runId));
    if (r.stored) await this.settle(msg);
    return r;
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
      // A graph's steps run side by side: an attempt is fenced on its own step's records, so
      // siblings never refuse each other's claims (its end is fenced on the whole run).
      isLine(msg.pipeline.steps) ? undefined : this.ctx.subjects.stepLog(msg.runId, step.id),
    );
  }

  /**
   * The record a delivery of `msg` is judged from (see judgeDelivery): the end of the run's log
   * for a straight line; for a graph, the last record of the step itself, or the run's end.
   */
  async stepHead(msg: StepMessage): Promise<LogHead | undefined> {
    if (isLine(msg.pipeline.steps)) return this.head(msg.runId);
    const step = msg.pipeline.steps[msg.stepIndex];
    const [own, end] = await Promise.all([this.last(this.ctx.subjects.stepLog(msg.runId, step.id)), this.last(this.ctx.subjects.runEnd(msg.runId))]);
    const stored = end ?? own;
    return stored ? this.toHead(stored) : undefined;
  }

  /**
   * A graph run's state, from one read of the last record of each of its log's subjects
   * (a direct get, answered by any replica): each step's state and last record.
   */
  async graph(runId: string, steps: StepMessage['pipeline']['steps']): Promise<GraphState> {
    const index = new Map(steps.map((s, i) => [s.id, i]));
    const state: GraphState = { ended: false, steps: steps.map(() => ({ state: 'waiting', headSeq: 0 })) };
    let found: AsyncIterable<StoredMsg>;
    try {
      // With the starts recorded beside the log: work an agent started without a claim (a first
      // delivery) is running, not waiting to be taken.
      found = await this.ctx.jsm.direct.getLastMessagesFor(this.ctx.subjects.runsStream, { multi_last: [this.ctx.subjects.runLog(runId), this.ctx.subjects.runStarts(runId)] });
    } catch (err) {
      if (err instanceof JetStreamApiError && (err.status === 404 || err.code === 10037)) return state;
      throw err;
    }
    const starts: number[] = [];
    for await (const stored of found) {
      const at = this.ctx.subjects.parseRunRecord(stored.subject);
      if (!at) continue;
      if (at.kind === 'started') {
        const i = index.get(at.stepId);
        if (i !== undefined) starts.push(i);
        continue;
      }
      if (at.kind === 'end') {
        state.ended = true;
        continue;
      }
      const i = index.get(at.stepId);
      if (i === undefined) continue;
      const v = state.steps[i];
      if (at.kind === 'done') {
        const decoded = decodeRunRecord(at, stored.data);
        if (decoded.ok && decoded.value.kind === 'done') {
          v.done = decoded.value.done;
          v.doneSeq = stored.seq;
          v.state = decoded.value.done.from.status;
        }
      } else if (!v.done) {
        const started = at.kind === 'claim' || at.kind === 'retry' || at.kind === 'release';
        if (started) v.state = 'running';
        else if (v.state === 'waiting') v.state = 'ready';
      }
      if (stored.seq > v.headSeq) {
        v.headSeq = stored.seq;
        v.head = this.toHead(stored);
      }
    }
    for (const i of starts) if (state.steps[i].state === 'ready') state.steps[i].state = 'running';
    return state;
  }

  /**
   * Ends `msg`'s step with `outcome`, if the step is still the writer's (its last record is at
   * `expect`, the sequence the writer judged or claimed at), and moves the run on. A straight
   * line: one record, the next step's work or the run's end, fenced on the whole run's log. A
   * graph: the step's `done`, fenced on the step's own records; then what follows from the run's
   * state (settle). A writer that stops between the two leaves its message unacked: its
   * redelivery finds the step ended and settles the run (see StepRecords.judge).
   */
  async endStep(msg: StepMessage, outcome: StepOutcome, by: EndedBy, expect: number, timeoutMs?: number): Promise<Appended> {
    if (isLine(msg.pipeline.steps)) return this.writeTransition(planTransition(msg, outcome, by), expect, timeoutMs);
    const done = stepDone(msg.runId, stepEnded(msg, outcome, by), { pin: by.released ? undefined : msg.machine, cancelled: outcome.status === 'cancelled' && !outcome.failFast });
    const r = await this.writeDone(done, MsgIds.stepEnd(msg.runId, msg.stepIndex, by.attempt, by.agent ?? 'gateway', by.at), expect, timeoutMs);
    if (r.stored) await this.settle(msg);
    return r;
  }

  /**
   * Ends a graph step whose work waits unstarted (no agent's: a person's approval, a step the
   * gateway skips or gives up), fenced on that work being still the step's last record
   * (`expect`) and, when given, `onlyIf` its message. Undefined when the work cannot be read, is
   * no longer the step's last record, or is not what `onlyIf` wants.
   */
  async endWaiting(runId: string, stepId: string, expect: number, outcome: StepOutcome, by: EndedBy, onlyIf: (msg: StepMessage) => boolean = () => true): Promise<Appended | undefined> {
    const work = await this.stepWork(runId, stepId);
    if (!work?.msg || work.seq !== expect || !onlyIf(work.msg)) return undefined;
    return this.endStep(work.msg, outcome, by, expect);
  }

  /**
   * Writes what follows from a graph run's state (planGraphFollowUp): the ends of the steps it
   * skips, the work of the steps it readies, the run's end. Each record is fenced on its own
   * step's records, so every writer may settle a run at any time and each record is stored
   * once: work only where its step has no record, a skip only on the record that was read, the
   * end only once.
   */
  async settle(template: StepMessage): Promise<void> {
    const { runId } = template;
    const s = this.ctx.subjects;
    let stopped = false;
    // Again only when a readied step's work could not be stored and was failed instead (bounded by the steps).
    for (let round = 0; round <= template.pipeline.steps.length; round++) {
      const g = await this.graph(runId, template.pipeline.steps);
      if (g.ended) break;
      const next = planGraphFollowUp(template, g.steps, new Date().toISOString());
      let unstorable = false;
      await Promise.all(
        next.records.map(async (r) => {
          if (r.kind === 'done') return this.writeDone(r.done, `${runId}.${r.done.from.stepIndex}.skip`, g.steps[r.done.from.stepIndex].headSeq);
          if (r.kind !== 'work') return undefined;
          const step = r.msg.pipeline.steps[r.msg.stepIndex];
          // An approval step's work waits for a person: on a subject no driver's consumer reads.
          const driver = step.approval ? APPROVAL_DRIVER : step.driver;
          if (!step.approval) this.consumerOf(step.driver, r.msg.machine);
          try {
            return await this.append(runId, s.work(runId, step.id, driver, step.approval ? undefined : r.msg.machine), r.msg, MsgIds.work(runId, r.msg.stepIndex, r.msg.mode), this.headersOf(r.msg), 0, undefined, s.stepLog(runId, step.id));
          } catch (err) {
            if (!(err instanceof UnstorableRecordError)) throw err;
            // Its work would never reach an agent (the outputs it carries outgrew the server's
            // max_payload): the step fails with the reason, and what follows is settled again.
            unstorable = true;
            const at = new Date().toISOString();
            const failed = stepDone(runId, { stepIndex: r.msg.stepIndex, stepId: step.id, driver: step.driver, attempt: 0, status: 'failed', message: `its work could not be stored: ${err.message}`, at });
            return this.writeDone(failed, `${runId}.${r.msg.stepIndex}.unstorable`, 0);
          }
        }),
      );
      if (next.failFast && !stopped) {
        stopped = true;
        await this.stopSiblings(template, next.cancel, next.stop?.message ?? 'a step failed');
      }
      if (unstorable || next.again) continue;
      const end = next.records.find((r) => r.kind === 'end');
      if (end?.kind === 'end') {
        const h = natsHeaders();
        h.set(Headers.Protocol, PROTOCOL_VERSION);
        h.set(Headers.RunId, runId);
        // Once per run: fenced on the end's own subject, which nothing else writes.
        await this.append(runId, s.runEnd(runId), end.end, MsgIds.end(runId), h, 0, undefined, s.runEnd(runId));
      }
      break;
    }
  }

  /** A graph step's `done`, fenced at `expect` on the step's own records (or on `fence`). */
  private writeDone(done: StepDone, msgId: string, expect: number, timeoutMs?: number, fence = this.ctx.subjects.stepLog(done.runId, done.from.stepId)): Promise<Appended> {
    const h = natsHeaders();
    h.set(Headers.Protocol, PROTOCOL_VERSION);
    h.set(Headers.RunId, done.runId);
    h.set(Headers.Step, done.from.stepId);
    return this.append(done.runId, this.ctx.subjects.stepRecord(done.runId, done.from.stepId, 'done'), done, msgId, h, expect, timeoutMs, fence);
  }

  /**
   * A graph whose step failed for good fails fast: the steps still running are stopped with a
   * stop order (the cancels bucket agents watch), and hand on as cancelled. Best effort: an
   * order that is not stored only lets them finish, after which their dependents are skipped.
   */
  private async stopSiblings(msg: StepMessage, running: number[], why: string): Promise<void> {
    const order: StopOrder = { status: 'cancelled', failFast: true, message: `stopped because ${why} (the pipeline fails fast)` };
    this.log.log(`run ${msg.runId}: fail-fast: stopping ${running.map((i) => msg.pipeline.steps[i].id).join(', ')}`);
    try {
      // Opened at the first fail-fast of this process, not before: most never need it.
      this.cancels ??= openCancelsBucket(this.ctx);
      await (await this.cancels).put(msg.runId, JSON.stringify(order));
    } catch (err) {
      this.cancels = undefined;
      this.log.warn(`run ${msg.runId}: could not store the stop order of its fail-fast: ${errorMessage(err)} (its running steps finish instead)`);
    }
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
    h.set(Headers.Protocol, PROTOCOL_VERSION);
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
      return await this.endStep(msg, outcome, by, expect);
    } catch (err) {
      if (!(err instanceof UnstorableRecordError)) throw err;
      if (isLine(msg.pipeline.steps)) return this.writeTransition(endOnly(msg, outcome, by), expect);
      // A graph step's end too large to store (its output is not kept on failure): record it
      // without its data; what follows is settled as usual.
      const from = stepEnded(msg, outcome, by);
      delete from.data;
      const r = await this.writeDone(stepDone(msg.runId, from, { pin: by.released ? undefined : msg.machine }), MsgIds.stepEnd(msg.runId, msg.stepIndex, by.attempt, by.agent ?? 'gateway', by.at), expect);
      if (r.stored) await this.settle(msg);
      return r;
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

  private async append(runId: string, subject: string, body: object, msgId: string, h: MsgHdrs, expect: number, timeoutMs?: number, fence = this.ctx.subjects.runLog(runId)): Promise<Appended> {
    h.set('Nats-Expected-Last-Subject-Sequence', String(expect));
    h.set('Nats-Expected-Last-Subject-Sequence-Subject', fence);
    const payload = JSON.stringify(body);
    try {
      const ack = await this.ctx.js.publish(subject, payload, { msgID: msgId, headers: h, timeout: timeoutMs });
      // The expectation held and the id was seen before: a retry of a write that was stored.
      // Stored only if that earlier write is still the end of the log.
      if (ack.duplicate) return (await this.isOurs(fence, msgId)) ? { stored: true, seq: ack.seq } : { stored: false };
      return { stored: true, seq: ack.seq };
    } catch (err) {
      if (isWrongLastSequence(err)) {
        // Refused: either someone else moved the run on, or an earlier try of this very write
        // was stored and its acknowledgement lost. The id at the end of the log tells which.
        const head = await this.last(fence);
        return head && head.header?.get('Nats-Msg-Id') === msgId ? { stored: true, seq: head.seq } : { stored: false };
      }
      if (isUnstorable(err)) throw new UnstorableRecordError(`${errorMessage(err)} (a ${Buffer.byteLength(payload)}-byte record on ${subject})`);
      throw err;
    }
  }

  private async isOurs(fence: string, msgId: string): Promise<boolean> {
    const head = await this.last(fence);
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
    else if (r.kind === 'done') head.fromStepId = r.done.from.stepId;
    else {
      head.attempt = r.record.attempt;
      head.agent = r.record.agent;
    }
    return head;
  }

  private headersOf(msg: StepMessage): MsgHdrs {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(stepHeaderValues(msg))) h.set(k, v);
    // The writer's span (a hand-off), else the run's own: a reader links its step to it.
    injectTraceparent(h, msg.traceparent);
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
