import type { RunRecordSubject } from '@conveyor/contracts';
import { judgeDelivery, mayTakeOver, type LogHead } from './delivery';

const work = (stepId: string): RunRecordSubject => ({ kind: 'work', runId: 'r', stepId, driver: 'd' });
const rec = (kind: 'claim' | 'retry' | 'release', stepId: string): RunRecordSubject => ({ kind, runId: 'r', stepId });
const head = (seq: number, at: RunRecordSubject, more: Partial<LogHead> = {}): LogHead => ({ seq, at, ...more });

describe('judgeDelivery', () => {
  it('runs attempt 1 when its own message ends the log', () => {
    expect(judgeDelivery('b', 10, head(10, work('b')))).toEqual({ run: true, attempt: 1, expect: 10, takeover: false });
  });

  it('a first delivery an agent started (recorded outside the fence) and stopped answering is taken over as the next attempt', () => {
    expect(judgeDelivery('b', 10, head(10, work('b')), 1)).toEqual({ run: true, attempt: 2, expect: 10, takeover: true });
  });

  it('counts attempts from the log: a lapsed claim is taken over, a retry is the next attempt, a release is the same one', () => {
    expect(judgeDelivery('b', 10, head(11, rec('claim', 'b'), { attempt: 1 }))).toEqual({ run: true, attempt: 2, expect: 11, takeover: true });
    expect(judgeDelivery('b', 10, head(12, rec('retry', 'b'), { attempt: 2 }))).toEqual({ run: true, attempt: 3, expect: 12, takeover: false });
    expect(judgeDelivery('b', 10, head(13, rec('release', 'b'), { attempt: 2 }))).toEqual({ run: true, attempt: 2, expect: 13, takeover: false });
  });

  it('never runs a step whose run moved on or ended, or a message that is not the run\'s work', () => {
    expect(judgeDelivery('b', 10, head(14, work('c'), { fromStepId: 'b' }))).toMatchObject({ run: false, why: expect.stringContaining('ended') });
    expect(judgeDelivery('b', 10, head(14, { kind: 'end', runId: 'r' }))).toMatchObject({ run: false, why: 'the run has ended' });
    expect(judgeDelivery('b', 10, head(15, rec('claim', 'c'), { attempt: 1 }))).toMatchObject({ run: false });
    expect(judgeDelivery('b', 10, head(9, work('a')))).toMatchObject({ run: false });
    expect(judgeDelivery('b', 10, undefined)).toMatchObject({ run: false });
  });
});

describe('mayTakeOver', () => {
  const claim = 1_000;

  it('takes over from an agent that is gone, or that heartbeated since its claim without the step', () => {
    expect(mayTakeOver(claim, 'r', 'b', undefined)).toBe(true);
    expect(mayTakeOver(claim, 'r', 'b', { storedAt: 1_500, running: [{ runId: 'r', stepId: 'a' }] })).toBe(true);
  });

  it('waits while the claimant says it runs the step, or has not heartbeated since its claim (a server that lost its consumers\' state)', () => {
    expect(mayTakeOver(claim, 'r', 'b', { storedAt: 1_500, running: [{ runId: 'r', stepId: 'b' }] })).toBe(false);
    expect(mayTakeOver(claim, 'r', 'b', { storedAt: 900, running: [] })).toBe(false);
  });

});
