import { planGraph, resolveNeeds, type GraphStep, type GraphStepState } from './graph';

const ids = (steps: GraphStep[], idx: number[]) => idx.map((i) => steps[i].id);

describe('resolveNeeds', () => {
  it('a step without needs needs the one before it; needs: [] starts at once', () => {
    const steps: GraphStep[] = [{ id: 'a' }, { id: 'b' }, { id: 'c', needs: [] }, { id: 'd', needs: ['a', 'c'] }];
    expect(resolveNeeds(steps)).toEqual({ needs: [[], [0], [], [0, 2]], problems: [] });
  });

  it('names the step of an unknown need, a self-reference, a need named twice and every step on a cycle', () => {
    expect(resolveNeeds([{ id: 'a', needs: ['x'] }]).problems).toEqual([{ stepId: 'a', message: 'needs "x", which is not a step of this pipeline' }]);
    expect(resolveNeeds([{ id: 'a', needs: ['a'] }]).problems).toEqual([{ stepId: 'a', message: 'needs itself' }]);
    expect(resolveNeeds([{ id: 'a' }, { id: 'b', needs: ['a', 'a'] }]).problems).toEqual([{ stepId: 'b', message: 'needs "a" twice' }]);
    const cycle = resolveNeeds([{ id: 'a', needs: ['c'] }, { id: 'b', needs: ['a'] }, { id: 'c', needs: ['b'] }, { id: 'd', needs: [] }]);
    expect(cycle.problems.map((p) => p.stepId).sort()).toEqual(['a', 'b', 'c']);
  });
});

describe('planGraph', () => {
  // start → (test1, test2 in parallel) → deploy (fan-in) → stop (always)
  const steps: GraphStep[] = [
    { id: 'start' },
    { id: 'test1', needs: ['start'] },
    { id: 'test2', needs: ['start'] },
    { id: 'deploy', needs: ['test1', 'test2'] },
    { id: 'stop', needs: ['deploy'], always: true },
  ];
  const { needs } = resolveNeeds(steps);
  const plan = (states: GraphStepState[], opts: { failFast: boolean; cancelled?: boolean } = { failFast: true }) => {
    const p = planGraph(steps, needs, states, opts);
    return { ready: ids(steps, p.ready), skipped: ids(steps, p.skipped), cancel: ids(steps, p.cancel), end: p.end };
  };

  it('fans out: both parallel steps are ready when their need succeeded', () => {
    expect(plan(['succeeded', 'waiting', 'waiting', 'waiting', 'waiting'])).toEqual({ ready: ['test1', 'test2'], skipped: [], cancel: [], end: undefined });
  });

  it('fans in once: the fan-in step is ready only when its last need ended', () => {
    expect(plan(['succeeded', 'succeeded', 'running', 'waiting', 'waiting']).ready).toEqual([]);
    expect(plan(['succeeded', 'succeeded', 'succeeded', 'waiting', 'waiting']).ready).toEqual(['deploy']);
  });

  it('failFast: a failure skips what depends on it, cancels running siblings, and the always step runs once its needs ended', () => {
    expect(plan(['succeeded', 'failed', 'running', 'waiting', 'waiting'])).toEqual({ ready: [], skipped: ['deploy'], cancel: ['test2'], end: undefined });
    expect(plan(['succeeded', 'failed', 'cancelled', 'skipped', 'waiting'])).toEqual({ ready: ['stop'], skipped: [], cancel: [], end: undefined });
    expect(plan(['succeeded', 'failed', 'cancelled', 'skipped', 'succeeded']).end).toBe('failed');
  });

  it('without failFast, an independent branch goes on', () => {
    const wide: GraphStep[] = [{ id: 'a', needs: [] }, { id: 'b', needs: [] }, { id: 'a2', needs: ['a'] }, { id: 'b2', needs: ['b'] }];
    const w = resolveNeeds(wide).needs;
    const p = planGraph(wide, w, ['failed', 'succeeded', 'waiting', 'waiting'], { failFast: false });
    expect({ ready: ids(wide, p.ready), skipped: ids(wide, p.skipped), cancel: p.cancel }).toEqual({ ready: ['b2'], skipped: ['a2'], cancel: [] });
  });

  it('a cancelled run skips what has not started (waiting, or its work stored), stops what runs, and still runs its always steps', () => {
    expect(plan(['succeeded', 'running', 'ready', 'waiting', 'waiting'], { failFast: true, cancelled: true })).toEqual({ ready: [], skipped: ['test2', 'deploy'], cancel: ['test1'], end: undefined });
  });

  it('ends succeeded when every step succeeded, and plans the same answer again from the same states', () => {
    const done: GraphStepState[] = ['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded'];
    expect(plan(done).end).toBe('succeeded');
    const states: GraphStepState[] = ['succeeded', 'succeeded', 'succeeded', 'waiting', 'waiting'];
    expect(planGraph(steps, needs, states, { failFast: true })).toEqual(planGraph(steps, needs, states, { failFast: true }));
  });
});
