import { MESSAGE_VERSION, type PipelineStep, type StepMessage } from '@conveyor/contracts';
import { endOnly, planHandOff, planTransition } from './hand-off';

const steps: PipelineStep[] = [
  { id: 'start', name: 'start', driver: 'container-start' },
  { id: 'clone', name: 'clone', driver: 'git-cloner' },
  { id: 'notify', name: 'notify', driver: 'notify', always: true },
  { id: 'build', name: 'build', driver: 'builder' },
  { id: 'stop', name: 'stop', driver: 'container-stop', always: true },
];

const msg = (stepIndex: number, mode: 'normal' | 'cleanup' = 'normal'): StepMessage => ({
  v: MESSAGE_VERSION,
  runId: '01hzzzzzzzzzzzzzzzzzzzzzzz',
  pipeline: { name: 'p', resource: 'r', steps },
  resource: { type: 'r', name: 'x', version: 1, spec: {}, metadata: {} },
  stepIndex,
  mode,
  outcome: mode === 'cleanup' ? { status: 'failed', stepId: 'clone', message: 'boom' } : undefined,
  outputs: {},
  createdAt: new Date(0).toISOString(),
});

describe('planHandOff', () => {
  it('moves a healthy run to the next step, carrying the output', () => {
    const h = planHandOff(msg(0), { status: 'succeeded', output: { success: true, data: { containerId: 'c1' } } });
    expect(h.next?.stepIndex).toBe(1);
    expect(h.next?.mode).toBe('normal');
    expect(h.next?.outputs.start.data).toEqual({ containerId: 'c1' });
    expect(h.skipped).toEqual([]);
  });

  it("hands the run's traceparent on to every later step, cleanup too", () => {
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    expect(planHandOff({ ...msg(0), traceparent: tp }, { status: 'succeeded', output: { success: true } }).next?.traceparent).toBe(tp);
    expect(planHandOff({ ...msg(1), traceparent: tp }, { status: 'failed', output: { success: false } }).next).toMatchObject({ mode: 'cleanup', traceparent: tp });
  });

  it('ends the run as succeeded after the last step', () => {
    expect(planHandOff(msg(4), { status: 'succeeded', output: { success: true } })).toEqual({ final: { status: 'succeeded' }, skipped: [] });
  });

  it('after a failure skips every later normal step and runs the always steps in order', () => {
    const h = planHandOff(msg(1), { status: 'failed', output: { success: false, message: 'exit 2' } });
    expect(h.skipped).toEqual([3]);
    expect(h.next).toMatchObject({ stepIndex: 2, mode: 'cleanup', outcome: { status: 'failed', stepId: 'clone' } });
    expect(h.next?.outcome?.message).toContain('exit 2');
    const h2 = planHandOff(h.next!, { status: 'succeeded', output: { success: true } });
    expect(h2.skipped).toEqual([]);
    expect(h2.next).toMatchObject({ stepIndex: 4, mode: 'cleanup' });
    const h3 = planHandOff(h2.next!, { status: 'failed', output: { success: false } });
    expect(h3.final).toEqual({ status: 'failed', message: expect.stringContaining('exit 2') });
  });

  it('a cancel leads to cleanup and ends the run cancelled', () => {
    const h = planHandOff(msg(3), { status: 'cancelled', message: 'cancelled by user' });
    expect(h.next).toMatchObject({ stepIndex: 4, mode: 'cleanup', outcome: { status: 'cancelled' } });
    expect(planHandOff(h.next!, { status: 'succeeded', output: { success: true } }).final).toEqual({ status: 'cancelled', message: 'cancelled by user' });
  });
});

describe('planTransition', () => {
  const by = { attempt: 2, agent: 'ag', machine: 'm1', durationMs: 12, at: '2026-01-01T00:00:00.000Z' };

  it('is one record: the next step\'s work carrying how this step ended', () => {
    const t = planTransition(msg(0), { status: 'succeeded', output: { success: true, data: { containerId: 'c1' } } }, by);
    expect(t.kind).toBe('work');
    if (t.kind !== 'work') return;
    expect(t.msg.stepIndex).toBe(1);
    expect(t.msg.from).toEqual({ stepIndex: 0, stepId: 'start', driver: 'container-start', attempt: 2, status: 'succeeded', data: { containerId: 'c1' }, agent: 'ag', machine: 'm1', durationMs: 12, at: by.at });
    expect(t.msg.skipped).toBeUndefined();
  });

  it('after a failure, the cleanup work also names the skipped steps', () => {
    const t = planTransition(msg(1), { status: 'failed', output: { success: false, message: 'exit 2' } }, by);
    expect(t.kind === 'work' && t.msg).toMatchObject({ stepIndex: 2, mode: 'cleanup', skipped: [3], from: { stepId: 'clone', status: 'failed', message: 'exit 2' } });
  });

  it('the last step\'s record is the run\'s end', () => {
    const t = planTransition(msg(4), { status: 'succeeded', output: { success: true } }, by);
    expect(t).toEqual({ kind: 'end', end: expect.objectContaining({ kind: 'end', status: 'succeeded', from: expect.objectContaining({ stepId: 'stop' }) }) });
  });

  it('a step that releases the machine hands on unpinned work, and says so; a pinned step hands on its pin', () => {
    const pinned = { ...msg(1), machine: 'm1' };
    const kept = planTransition(pinned, { status: 'succeeded', output: { success: true } }, by);
    expect(kept.kind === 'work' && kept.msg).toMatchObject({ stepIndex: 2, machine: 'm1', from: { pin: 'm1' } });
    const freed = planTransition(pinned, { status: 'succeeded', output: { success: true } }, { ...by, released: true });
    expect(freed.kind === 'work' && freed.msg.machine).toBeUndefined();
    expect(freed.kind === 'work' && freed.msg.from).toMatchObject({ machine: 'm1', released: true });
    expect(freed.kind === 'work' && freed.msg.from?.pin).toBeUndefined();
  });

  it('a skipped step records no agent', () => {
    const t = planTransition(msg(3), { status: 'cancelled', message: 'stop' }, { attempt: 0, at: by.at, as: 'skipped', agent: 'ag' });
    expect(t.kind === 'work' && t.msg.from).toEqual({ stepIndex: 3, stepId: 'build', driver: 'builder', attempt: 0, status: 'skipped', message: 'stop', at: by.at });
  });

  it('endOnly ends the run at once, small whatever the spec and outputs', () => {
    const big = { ...msg(1), outputs: { start: { success: true, data: { blob: 'x'.repeat(100_000) } } }, resource: { type: 'r', name: 'x', version: 1, spec: { blob: 'y'.repeat(100_000) }, metadata: {} } };
    const t = endOnly(big, { status: 'failed', output: { success: false, message: 'too big' } }, by);
    expect(t.kind).toBe('end');
    expect(JSON.stringify(t).length).toBeLessThan(2_000);
  });
});
