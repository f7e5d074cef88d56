import type { Run, RunStatus, StepRun } from '@conveyor/contracts';
import { assess, sweepIntervalMs } from './janitor';

const step = (id: string, driver: string, machine?: string, status: StepRun['status'] = machine ? 'running' : 'pending'): StepRun => ({
  id,
  name: id,
  driver,
  always: driver === 'container-stop',
  needs: [],
  status,
  attempts: machine ? 1 : 0,
  ...(machine ? { machine } : {}),
});

function run(status: RunStatus, steps: StepRun[], finishedAt?: string): Run {
  return {
    id: '01jc0000000000000000000000',
    pipeline: { name: 'p', resource: 'r', steps: [] },
    resource: { type: 'r', name: 'x', version: 1 },
    status,
    steps,
    cancelRequested: false,
    createdAt: '2025-01-01T00:00:00.000Z',
    ...(finishedAt ? { finishedAt } : {}),
  };
}

describe('assess: what the janitor makes of a run on machine "a"', () => {
  it('removes the leftovers of a run that no longer exists', () => {
    expect(assess(undefined, 'a')).toEqual({ keep: false, reason: 'missing', detail: 'the run no longer exists' });
  });

  it('removes those of an ended run, a grace after the janitor first saw it ended (its own clock, not the record\'s)', () => {
    for (const status of ['succeeded', 'failed', 'cancelled'] as const) {
      // Even one that ran here: it ended.
      expect(assess(run(status, [step('start', 'container-start', 'a', 'succeeded')], '2025-01-01T00:05:00.000Z'), 'a')).toEqual({
        keep: false,
        reason: 'ended',
        detail: `the run ended (${status} at 2025-01-01T00:05:00.000Z)`,
      });
    }
    expect(assess(run('failed', []), 'a')).toMatchObject({ keep: false, reason: 'ended' });
  });

  it('never removes those of a live run pinned here, nor of one with any step on this machine', () => {
    expect(assess(run('running', [step('start', 'container-start', 'a', 'succeeded'), step('build', 'builder', 'a')]), 'a')).toMatchObject({ keep: true });
    // The record's container-start names b (a later attempt) but the run's next steps ran here.
    expect(assess(run('running', [step('start', 'container-start', 'b', 'succeeded'), step('clone', 'git-cloner', 'a')]), 'a')).toMatchObject({ keep: true });
    expect(assess(run('queued', [step('start', 'container-start', 'a')]), 'a')).toMatchObject({ keep: true });
  });

  it('keeps those of a live run not pinned yet', () => {
    expect(assess(run('queued', [step('start', 'container-start')]), 'a')).toEqual({ keep: true, detail: 'the run is live and not pinned to a machine yet' });
    expect(assess(run('running', [step('lint', 'linter', 'c', 'succeeded'), step('start', 'container-start')]), 'a')).toMatchObject({ keep: true });
  });

  it('removes those of a live run whose container-start moved to another machine', () => {
    expect(assess(run('running', [step('start', 'container-start', 'b'), step('build', 'builder')]), 'a')).toEqual({
      keep: false,
      reason: 'moved',
      detail: 'the run is live on machine b',
    });
  });
});

describe('sweepIntervalMs', () => {
  it('sweeps twice per grace, between every second and every minute', () => {
    expect(sweepIntervalMs(300_000)).toBe(60_000);
    expect(sweepIntervalMs(60_000)).toBe(30_000);
    expect(sweepIntervalMs(2_000)).toBe(1_000);
    expect(sweepIntervalMs(500)).toBe(1_000);
  });
});
