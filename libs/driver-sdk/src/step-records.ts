import { Logger } from '@nestjs/common';
import type { StepMessage } from '@conveyor/contracts';
import { RunLog, UnstorableRecordError, type Appended, type RecordWriter } from '@conveyor/run-log';
import { judgeDelivery, mayTakeOver, type Delivery, type EndedBy, type Heartbeat, type StepOutcome } from '@conveyor/runs';

/** A write that still fails this long (e.g. across a NATS restart) gives up: the message goes back. */
const PATIENCE_MS = 60_000;
/** Tries of a fenced write whose run log keeps moving (only a graph's parallel steps would). */
const MAX_REFUSALS = 5;

export type Written = Appended | { stored: 'gave-up'; reason: string };

/**
 * What an agent writes to a run's log about one delivery of a step message, with the
 * patience a NATS failover needs and nothing more: every record is fenced (libs/run-log), so
 * a write either lands at the end of the log its writer judged, or is refused because the
 * run moved on — never stored twice, never after another agent took the step over.
 */
export class StepRecords {
  private readonly log = new Logger('StepRecords');

  constructor(
    private readonly runLog: RunLog,
    /** An agent's last heartbeat (undefined when it is gone), to tell a dead claimant from a live one. */
    private readonly heartbeatOf: (agent: string) => Promise<Heartbeat | undefined>,
    /**
     * Whether any agent may be running a step: this one, a live one whose last beat lists it, or
     * a live agent of its driver that has not beaten since the work was stored (server clock):
     * one cut off by a nats-server restart that forgot the delivery may hold it and not know yet.
     */
    private readonly runByAnyone: (runId: string, stepId: string, driver: string, workStoredAt: number) => Promise<boolean>,
  ) {}

  /**
   * What this delivery asks for, judged from the end of the run's log. A step another agent
   * claimed and still runs (as its heartbeat says: a nats-server that lost its consumers'
   * state redelivers such work) is not taken over: `wait`.
   */
  async judge(msg: StepMessage, workSeq: number, workStoredAt = 0): Promise<Delivery | { run: false; wait: true; why: string } | undefined> {
    const stepId = msg.pipeline.steps[msg.stepIndex].id;
    return this.patiently(`read run ${msg.runId}`, async () => {
      const head = await this.runLog.stepHead(msg);
      // Nothing fenced since this work: a first delivery may have started it (recorded beside the log).
      const started = head?.at.kind === 'work' && head.seq === workSeq ? await this.runLog.lastStarted(msg.runId, stepId) : undefined;
      const judged = judgeDelivery(stepId, workSeq, head, started ? 1 : undefined);
      // A graph's step that ended, delivered again: its writer may have stopped between the step's
      // end and what follows it. Settling writes only what is missing, once.
      if (!judged.run && head?.at.kind === 'done') await this.runLog.settle(msg);
      const claimant = head?.at.kind === 'claim' ? { agent: head.agent, at: head.storedAt } : started ? { agent: started.agent, at: started.storedAt } : undefined;
      if (judged.run && judged.takeover && claimant?.agent && !mayTakeOver(claimant.at, msg.runId, stepId, await this.heartbeatOf(claimant.agent))) {
        return { run: false, wait: true, why: `agent ${claimant.agent} started it and is still running it` } as const;
      }
      // Unclaimed and no start recorded, yet delivered again: a restarted nats-server forgets
      // deliveries, and a fast step's start may not have been recorded. Whoever runs it says so.
      if (judged.run && !judged.takeover && !claimant && (await this.runByAnyone(msg.runId, stepId, msg.pipeline.steps[msg.stepIndex].driver, workStoredAt))) {
        return { run: false, wait: true, why: 'an agent may still be running it (a redelivery of work in hand, or an agent not heard from since it was stored)' } as const;
      }
      return judged;
    });
  }

  /**
   * Claims an attempt: the step is this agent's from now on. Judged from the log's end, and
   * judged again after a refusal. Undefined when NATS did not answer in time; `run: false` when
   * the step is not to be run (`why` says why; `wait` when another agent still runs it).
   */
  async claim(msg: StepMessage, workSeq: number, by: RecordWriter, workStoredAt = 0): Promise<{ attempt: number; seq: number; takeover: boolean } | { run: false; why: string; wait?: true } | undefined> {
    let judged = await this.judge(msg, workSeq, workStoredAt);
    for (let i = 0; judged && i < MAX_REFUSALS; i++) {
      if (!judged.run) return judged;
      const d = judged;
      const r = await this.patiently(`claim run ${msg.runId}`, () => this.runLog.step('claim', msg, d.attempt, by, d.expect));
      if (r === undefined) return undefined;
      if (r.stored) return { attempt: d.attempt, seq: r.seq, takeover: d.takeover };
      judged = await this.judge(msg, workSeq, workStoredAt);
    }
    return judged && !judged.run ? judged : undefined;
  }

  /**
   * Hands the run on from a step this agent owns (its last record is at `expect`): one record,
   * the next step's work or the run's end. A record that can never be stored (larger than
   * the server takes, on a subject this agent may not publish) fails the step for good
   * instead, with the reason, so that the run ends and its cleanup runs.
   */
  async handOff(msg: StepMessage, outcome: StepOutcome, by: EndedBy, expect: number): Promise<Written | undefined> {
    try {
      return await this.patiently(`hand off run ${msg.runId}`, () => this.runLog.endStep(msg, outcome, by, expect));
    } catch (err) {
      if (!(err instanceof UnstorableRecordError)) throw err;
      const reason = `the step's hand-off could not be stored: ${err.message}`;
      this.log.error(`run ${msg.runId}: ${reason}`);
      return this.failInstead(msg, by, expect, reason);
    }
  }

  /** A record about this agent's attempt (a retry to come, the step given back). */
  async stepRecord(kind: 'retry' | 'release', msg: StepMessage, attempt: number, by: RecordWriter, expect: number, extra: { message?: string; retryInMs?: number; durationMs?: number } = {}): Promise<Appended | undefined> {
    return this.patiently(`${kind} run ${msg.runId}`, () => this.runLog.step(kind, msg, attempt, by, expect, extra));
  }

  /**
   * The step fails for good with `reason`, and the run goes on to its cleanup. What made the
   * hand-off too large is most likely the step's own output, which a failure does not carry;
   * if even that cannot be stored, the run just ends, with a record small enough for any
   * server (the build machine's janitor removes what the run left there).
   */
  private async failInstead(msg: StepMessage, by: EndedBy, expect: number, reason: string): Promise<Written | undefined> {
    const failed: StepOutcome = { status: 'failed', output: { success: false, message: reason, agent: by.agent, machine: by.machine } };
    try {
      const r = await this.patiently(`fail run ${msg.runId}`, () => this.runLog.failStep(msg, failed, by, expect));
      return r && r.stored ? { stored: 'gave-up', reason } : r;
    } catch (err) {
      if (!(err instanceof UnstorableRecordError)) throw err;
      return undefined;
    }
  }

  /** Retries a write while NATS does not answer (a restart, a leader election), bounded in time; undefined when out of patience. */
  private async patiently<T>(what: string, write: () => Promise<T>): Promise<T | undefined> {
    const deadline = Date.now() + PATIENCE_MS;
    for (let i = 1; ; i++) {
      try {
        return await write();
      } catch (err) {
        if (err instanceof UnstorableRecordError) throw err;
        if (Date.now() > deadline) {
          this.log.error(`could not ${what} after ${i} tries: ${err instanceof Error ? err.message : err}`);
          return undefined;
        }
        if (i === 1) this.log.warn(`could not ${what}: ${err instanceof Error ? err.message : err}; trying again for up to ${PATIENCE_MS / 1000}s`);
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** i)));
      }
    }
  }
}
