import type { RunRecordSubject } from '@conveyor/contracts';

/** The record at the end of a run's log, as much of it as judging a delivery needs. */
export interface LogHead {
  seq: number;
  at: RunRecordSubject;
  /** For a claim, retry or release: the attempt it is about, and the agent that wrote it. */
  attempt?: number;
  agent?: string;
  /** When the server stored it (the server's clock). */
  storedAt?: number;
  /** For work and the end: the step whose ending that record is. */
  fromStepId?: string;
}

export type Delivery =
  /** Start attempt `attempt` of the step, claiming it on a log that ends at `expect`. */
  | { run: true; attempt: number; expect: number; takeover: boolean }
  /** Nothing to run: the step already ended or the run did (`why` says which); ack the message. */
  | { run: false; why: string };

/**
 * Decides what a delivered step message asks for, from the end of its run's log. Every
 * delivery is judged, first ones too: a consumer recreated by an operator redelivers old
 * work, a message may come back after its step was handed on, and the run may have ended
 * (cancelled, given up by the gateway). Attempts are counted from what the log recorded —
 * claims, not JetStream deliveries — so a message handed back unstarted (a drain, an error
 * before the handler) never uses one up.
 *
 * `workSeq` is the stream sequence of the delivered message itself; `started`, the attempt of
 * the last `started` record of the step (a first delivery's start, recorded outside the fence),
 * read only when the log still ends with this message.
 */
export function judgeDelivery(stepId: string, workSeq: number, head: LogHead | undefined, started?: number): Delivery {
  if (!head) return { run: false, why: 'its run has no records left (the stream no longer keeps them)' };
  if (head.seq < workSeq) return { run: false, why: 'the run log ends before this message: it is not this run\'s work' };
  const at = head.at;
  if (at.kind === 'end') return { run: false, why: 'the run has ended' };
  if (at.kind === 'work') {
    // Nothing fenced since this work: an agent may have started it (and stopped answering).
    if (head.seq === workSeq) return started ? { run: true, attempt: started + 1, expect: head.seq, takeover: true } : { run: true, attempt: 1, expect: head.seq, takeover: false };
    return { run: false, why: head.fromStepId === stepId ? 'the step has ended and the run moved on' : 'the run moved on past this step' };
  }
  if (at.stepId !== stepId) return { run: false, why: 'the run moved on past this step' };
  const n = head.attempt ?? 1;
  switch (at.kind) {
    // Its agent stopped answering (died, or its in-progress acks lapsed): this is another attempt.
    case 'claim':
      return { run: true, attempt: n + 1, expect: head.seq, takeover: true };
    case 'retry':
      return { run: true, attempt: n + 1, expect: head.seq, takeover: false };
    // A graph's step judged on its own records: it has ended.
    case 'done':
      return { run: false, why: 'the step has ended' };
    // Given back unfinished (its agent was shutting down): the same attempt, started again.
    case 'release':
      return { run: true, attempt: n, expect: head.seq, takeover: false };
    default:
      return { run: false, why: `the run's log ends with an unexpected record (${at.kind})` };
  }
}

/** An agent's last heartbeat, as the agents bucket holds it: when the server stored it, and the steps it was running. */
export interface Heartbeat {
  storedAt: number;
  running: Array<{ runId: string; stepId: string }>;
}

/**
 * Whether a step claimed by another agent may be taken over now. A redelivery usually means
 * the claimant stopped answering (died, frozen, cut off), but a nats-server that lost its
 * consumers' state (killed) redelivers work its agents are still doing. So the claimant's own
 * heartbeat decides, on the server's clock only: gone (its entry expired), or a heartbeat
 * stored after the claim that does not list the step, means take it over; a heartbeat that
 * lists the step, or none since the claim, means wait (its hand-off will end the step, or its
 * next heartbeat will tell). `claimedAt`: when the server stored the claim (or the start of a
 * first delivery, recorded beside the log).
 */
export function mayTakeOver(claimedAt: number | undefined, runId: string, stepId: string, heartbeat: Heartbeat | undefined): boolean {
  if (!heartbeat) return true;
  if (heartbeat.running.some((r) => r.runId === runId && r.stepId === stepId)) return false;
  return claimedAt === undefined || heartbeat.storedAt > claimedAt;
}
