import { MESSAGE_VERSION, type PipelineStep, type StepMessage } from '@conveyor/contracts';
import { planHandOff } from './hand-off';

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
