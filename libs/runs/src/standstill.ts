import type { LogHead } from './delivery';

/** The durable consumer that holds a run's current work, as the server reports it. */
export interface WorkQueueState {
  /** Every stream sequence up to this one was acked (or terminated) on the consumer. */
  ackFloorSeq: number;
  /**
   * Configured as a drivers' work consumer (its filter, deliver policy all, explicit acks): only
   * such a consumer's ack floor says what happened to work. One an operator made otherwise (say
   * deliver new) has a floor past work it never delivered.
   */
  isWorkQueue: boolean;
}

/** The current step's work of a run: the last work record of the step its log ends in. */
export interface CurrentWork {
  seq: number;
  driver: string;
  machine?: string;
}

export type Standstill =
  /** The log ended: the run's record follows from the projector. */
  | { kind: 'ended' }
  /** Its work waits in its driver's queue, or an agent holds it: the run moves on by itself (or the watchdog gives up on it). */
  | { kind: 'in-flight' }
  /** Its work waits on a subject no consumer reads (an operator deleted the driver's consumer, or the server removed a gone machine's): make it again. */
  | { kind: 'no-queue' }
  /** Nothing will ever move the run on: fail it with `why`. */
  | { kind: 'stuck'; why: string }
  /** Cannot be told: the queue is not a work consumer as Conveyor makes them. */
  | { kind: 'unknown'; why: string };

/**
 * Whether a run that has not ended still has work in flight, from the end of its log, its
 * current work and the queue that should hold it. Every path by which an agent lets go of work
 * writes a record first (a hand-off, a retry, a release), so work at the end of the log that
 * its queue already acked left without one: it was dead-lettered (terminated) or acked by a
 * client that is not an agent. The failing write is fenced on the head read here, so a run that
 * moved on meanwhile is left alone; a run that did not move (its step still running) is
 * protected by the checks before the floor: a live agent's heartbeat listing the step, and a
 * queue that is a work consumer as Conveyor makes them.
 */
export function judgeStandstill(head: LogHead | undefined, work: CurrentWork | undefined, queue: WorkQueueState | undefined, streamName: string, runningNow = false): Standstill {
  if (!head) return { kind: 'stuck', why: `its log is no longer stored (${streamName} keeps runs' logs for CONVEYOR_RUN_LOG_MAX_AGE, or they were purged)` };
  if (head.at.kind === 'end') return { kind: 'ended' };
  if (!work) return { kind: 'stuck', why: `the work of its current step ("${head.at.stepId}") is no longer stored in ${streamName}` };
  // A live agent says it runs the step (its heartbeat): in flight, whatever the queue says.
  if (runningNow) return { kind: 'in-flight' };
  if (!queue) return { kind: 'no-queue' };
  if (!queue.isWorkQueue) return { kind: 'unknown', why: `the consumer of driver "${work.driver}"${work.machine ? ` on "${work.machine}"` : ''} is not configured as Conveyor makes it (filter, deliver policy all, explicit acks)` };
  if (work.seq <= queue.ackFloorSeq) {
    const where = work.machine ? `driver "${work.driver}" on build machine "${work.machine}"` : `driver "${work.driver}"`;
    return {
      kind: 'stuck',
      why: `its step "${head.at.stepId}" left the queue of ${where} without an outcome (message ${work.seq} of ${streamName} was dead-lettered, or acknowledged by a client that did not hand it on)`,
    };
  }
  return { kind: 'in-flight' };
}
