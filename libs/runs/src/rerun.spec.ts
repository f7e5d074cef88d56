import type { Run, StepRun } from '@conveyor/contracts';
import { planRerun } from './rerun';

const stepRun = (id: string, status: StepRun['status'], extra: Partial<StepRun> = {}): StepRun => ({ id, name: id, driver: 'd', always: false, needs: [], status, attempts: 1, ...extra });

describe('planRerun', () => {
  const seed = (buildStatus: StepRun['status']): Run => ({
    id: 'old',
    pipeline: {
      name: 'p',
      resource: 't',
      steps: [
        { id: 'start', name: 'start', driver: 'container-start' },
        { id: 'clone', name: 'clone', driver: 'git-cloner' },
        { id: 'lint', name: 'lint', driver: 'noop', needs: [] },
        { id: 'build', name: 'build', driver: 'builder', needs: ['clone'] },
        { id: 'stop', name: 'stop', driver: 'container-stop', needs: ['build'], always: true },
      ],
    },
    resource: { type: 't', name: 'r', version: 1 },
    status: buildStatus === 'succeeded' ? 'succeeded' : 'failed',
    steps: [
      stepRun('start', 'succeeded', { pin: 'm1', data: { containerName: 'c1' } }),
      stepRun('clone', 'succeeded', { pin: 'm1' }),
      stepRun('lint', 'succeeded', { message: 'clean', data: { warnings: 0 } }),
      stepRun('build', buildStatus, { pin: 'm1' }),
      stepRun('stop', 'succeeded', { pin: 'm1' }),
    ],
    cancelRequested: false,
    createdAt: '2026-01-01T00:00:00.000Z',
  });

  it('runs again what failed, the always steps, and the steps that made the machine state it needs; carries the rest over with its outputs', () => {
    const steps = planRerun(seed('failed'), true)!;
    expect(steps.map((s) => [s.id, s.reused])).toEqual([
      ['start', undefined],
      ['clone', undefined],
      ['lint', { from: 'old', message: 'clean', data: { warnings: 0 } }],
      ['build', undefined],
      ['stop', undefined],
    ]);
  });

  it('keeps where a carried step came from when it was carried before', () => {
    const old = seed('failed');
    old.steps[2].reusedFrom = 'older';
    expect(planRerun(old, true)![2].reused?.from).toBe('older');
  });

  it('has nothing to run again when every step succeeded; the whole run runs everything', () => {
    expect(planRerun(seed('succeeded'), true)).toBeUndefined();
    expect(planRerun(seed('succeeded'), false)!.every((s) => !s.reused)).toBe(true);
  });
});
