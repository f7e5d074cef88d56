import type { RunRecordSubject } from '@conveyor/contracts';
import type { LogHead } from './delivery';
import { judgeStandstill } from './standstill';

const work: RunRecordSubject = { kind: 'work', runId: 'r', stepId: 'build', driver: 'builder', machine: 'm1' };
const claim: RunRecordSubject = { kind: 'claim', runId: 'r', stepId: 'build' };
const head = (seq: number, at: RunRecordSubject): LogHead => ({ seq, at });
const current = { seq: 10, driver: 'builder', machine: 'm1' };

describe('judgeStandstill', () => {
  it('leaves a run alone whose work waits in its queue or is held by an agent', () => {
    expect(judgeStandstill(head(10, work), current, { ackFloorSeq: 9, isWorkQueue: true }, 'RUNS')).toEqual({ kind: 'in-flight' });
    expect(judgeStandstill(head(11, claim), current, { ackFloorSeq: 3, isWorkQueue: true }, 'RUNS')).toEqual({ kind: 'in-flight' });
  });

  it('has nothing to do for a run whose log ended', () => {
    expect(judgeStandstill(head(12, { kind: 'end', runId: 'r' }), undefined, undefined, 'RUNS')).toEqual({ kind: 'ended' });
  });

  it('asks for the queue again when the work waits on a subject no consumer reads', () => {
    expect(judgeStandstill(head(10, work), current, undefined, 'RUNS')).toEqual({ kind: 'no-queue' });
  });

  it('calls a run stuck whose current work its queue acked or terminated without a record, naming the step, queue and message', () => {
    for (const floor of [10, 11]) {
      const judged = judgeStandstill(head(10, work), current, { ackFloorSeq: floor, isWorkQueue: true }, 'RUNS');
      expect(judged).toEqual({ kind: 'stuck', why: expect.stringContaining('step "build" left the queue of driver "builder" on build machine "m1"') });
      expect(judged).toMatchObject({ why: expect.stringContaining('message 10 of RUNS was dead-lettered') });
    }
    // A claim's work acked: the agent that claimed it let go without a record.
    expect(judgeStandstill(head(11, claim), { seq: 10, driver: 'builder' }, { ackFloorSeq: 10, isWorkQueue: true }, 'RUNS')).toMatchObject({ kind: 'stuck', why: expect.stringContaining('queue of driver "builder" without') });
  });

  it('never calls a run stuck whose step a live agent says it runs, or whose queue is not a work consumer', () => {
    expect(judgeStandstill(head(10, work), current, { ackFloorSeq: 50, isWorkQueue: true }, 'RUNS', true)).toEqual({ kind: 'in-flight' });
    expect(judgeStandstill(head(10, work), current, { ackFloorSeq: 50, isWorkQueue: false }, 'RUNS')).toMatchObject({ kind: 'unknown', why: expect.stringContaining('not configured as Conveyor makes it') });
  });

  it('calls a run stuck whose log or current work is no longer stored', () => {
    expect(judgeStandstill(undefined, undefined, undefined, 'RUNS')).toMatchObject({ kind: 'stuck', why: expect.stringContaining('CONVEYOR_RUN_LOG_MAX_AGE') });
    expect(judgeStandstill(head(11, claim), undefined, { ackFloorSeq: 0, isWorkQueue: true }, 'RUNS')).toMatchObject({ kind: 'stuck', why: expect.stringContaining('("build") is no longer stored') });
  });
});
