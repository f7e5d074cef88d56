import { isLine, planGraph, planGraphFollowUp, resolveNeeds, stepDone, type GraphRecord, type GraphStep, type GraphStepState, type GraphFollowUp, type StepView } from './graph';
import { conditionInputs, conditionProblem, evaluateCondition } from './conditions';

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

describe('planGraphFollowUp: what follows a step\'s end', () => {
  const pipeline = {
    name: 'p',
    resource: 'thing',
    steps: [
      { id: 'start', name: 'start', driver: 'pin' },
      { id: 't1', name: 'test 1', driver: 'b', needs: ['start'] },
      { id: 't2', name: 'test 2', driver: 'b', needs: ['start'] },
      { id: 'deploy', name: 'deploy', driver: 'b', needs: ['t1', 't2'] },
      { id: 'stop', name: 'stop', driver: 'c', needs: ['deploy'], always: true },
    ],
  };
  const template = { v: 1 as const, runId: 'r1', pipeline, resource: { type: 'thing', name: 'x', version: 1, spec: {}, metadata: {} }, stepIndex: 0, mode: 'normal' as const, outputs: {}, createdAt: '2026-01-01T00:00:00.000Z' };
  const at = '2026-01-01T00:00:01.000Z';
  const ended = (stepIndex: number, status: 'succeeded' | 'failed' | 'cancelled' | 'skipped', extra: object = {}) => ({ stepIndex, stepId: pipeline.steps[stepIndex].id, driver: pipeline.steps[stepIndex].driver, attempt: 1, status, at, ...extra });
  const done = (stepIndex: number, status: 'succeeded' | 'failed', extra: { pin?: string; data?: object; message?: string } = {}): StepView => ({
    state: status,
    done: { v: 1, kind: 'done', runId: 'r1', from: ended(stepIndex, status, { data: extra.data, message: extra.message }), ...(extra.pin ? { pin: extra.pin } : {}), at },
    doneSeq: stepIndex + 1,
  });
  // The run's state once the step's own `done` is stored, as its writer reads it before settling.
  const afterEnd = (views: StepView[], e: ReturnType<typeof ended>, opts: { cancelled?: boolean; pin?: string } = {}) =>
    planGraphFollowUp({ ...template, stepIndex: e.stepIndex }, views.map((v, j) => (j === e.stepIndex ? { state: e.status, done: stepDone('r1', e, opts), doneSeq: 99 } : v)), at);
  const kinds = (t: GraphFollowUp) => t.records.map((r) => (r.kind === 'work' ? `work ${r.msg.pipeline.steps[r.msg.stepIndex].id}` : r.kind === 'done' ? `done ${r.done.from.stepId} ${r.done.from.status}` : `end ${r.end.status}`));

  it('the first step readies both tests, with its output and its machine pin', () => {
    const t = afterEnd([{ state: 'running' }, { state: 'waiting' }, { state: 'waiting' }, { state: 'waiting' }, { state: 'waiting' }], ended(0, 'succeeded', { data: { id: 'c1' } }), { pin: 'm1' });
    expect(kinds(t)).toEqual(['work t1', 'work t2']);
    const work = t.records[0] as Extract<GraphRecord, { kind: 'work' }>;
    expect(work.msg).toMatchObject({ stepIndex: 1, mode: 'normal', machine: 'm1', outputs: { start: { success: true, data: { id: 'c1' } } } });
    expect(work.msg.from).toBeUndefined();
    expect(work.msg.traceparent).toBeUndefined();
    // The run's traceparent goes to every step it readies.
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const traced = planGraphFollowUp({ ...template, traceparent: tp }, [done(0, 'succeeded'), { state: 'waiting' }, { state: 'waiting' }, { state: 'waiting' }, { state: 'waiting' }], at);
    expect(traced.records.map((r) => r.kind === 'work' && r.msg.traceparent)).toEqual([tp, tp]);
  });

  it('a step that released the machine unpins what follows it, though an earlier step carried a pin', () => {
    const views: StepView[] = [done(0, 'succeeded', { pin: 'm1' }), done(1, 'succeeded', { pin: 'm1' }), { state: 'running' }, { state: 'waiting' }, { state: 'waiting' }];
    const pinned = afterEnd(views, ended(2, 'succeeded', { pin: 'm1' }), { pin: 'm1' });
    expect((pinned.records[0] as Extract<GraphRecord, { kind: 'work' }>).msg.machine).toBe('m1');
    const freed = afterEnd(views, ended(2, 'succeeded', { released: true }));
    expect(kinds(freed)).toEqual(['work deploy']);
    expect((freed.records[0] as Extract<GraphRecord, { kind: 'work' }>).msg.machine).toBeUndefined();
  });

  it('of two tests, only the one that ends last readies the fan-in', () => {
    const first = afterEnd([done(0, 'succeeded', { pin: 'm1' }), { state: 'running' }, { state: 'running' }, { state: 'waiting' }, { state: 'waiting' }], ended(1, 'succeeded'));
    expect(kinds(first)).toEqual([]);
    const last = afterEnd([done(0, 'succeeded', { pin: 'm1' }), done(1, 'succeeded'), { state: 'running' }, { state: 'waiting' }, { state: 'waiting' }], ended(2, 'succeeded'));
    expect(kinds(last)).toEqual(['work deploy']);
    expect((last.records[0] as Extract<GraphRecord, { kind: 'work' }>).msg.machine).toBe('m1');
  });

  it('a failure with fail-fast skips what depends on it, asks to stop the running sibling, and readies cleanup only once that ended', () => {
    const t = afterEnd([done(0, 'succeeded'), { state: 'running' }, { state: 'running' }, { state: 'waiting' }, { state: 'waiting' }], ended(1, 'failed', { message: 'boom' }));
    expect(kinds(t)).toEqual(['done deploy skipped']);
    expect(t.cancel).toEqual([2]);
    expect(t.failFast).toBe(true);
    const after = afterEnd([done(0, 'succeeded'), done(1, 'failed', { message: 'boom' }), { state: 'running' }, { state: 'skipped', doneSeq: 9 }, { state: 'waiting' }], ended(2, 'cancelled'));
    expect(kinds(after)).toEqual(['work stop']);
    expect((after.records[0] as Extract<GraphRecord, { kind: 'work' }>).msg).toMatchObject({ mode: 'cleanup', outcome: { status: 'failed', stepId: 't1', message: 'step "test 1" failed: boom' } });
  });

  it('the last step ends the run, with the first failure as its message', () => {
    const t = afterEnd([done(0, 'succeeded'), done(1, 'failed', { message: 'boom' }), done(2, 'succeeded'), { state: 'skipped', doneSeq: 9 }, { state: 'running' }], ended(4, 'succeeded'));
    expect(kinds(t)).toEqual(['end failed']);
    expect((t.records[0] as Extract<GraphRecord, { kind: 'end' }>).end.message).toBe('step "test 1" failed: boom');
  });

  it('a user cancel marks every end it writes, and the run ends cancelled', () => {
    const t = afterEnd([done(0, 'succeeded'), { state: 'ready' }, { state: 'ready' }, { state: 'waiting' }, { state: 'waiting' }], { ...ended(1, 'skipped'), attempt: 0 }, { cancelled: true });
    expect(kinds(t)).toEqual(['done t2 skipped', 'done deploy skipped', 'work stop']);
    expect(t.records.filter((r) => r.kind === 'done').every((r) => r.kind === 'done' && r.done.cancelled)).toBe(true);
    expect(t.failFast).toBe(false);
  });
});

describe('isLine', () => {
  it('a list without needs, or with needs that name the step before, is a line', () => {
    expect(isLine([{ id: 'a' }, { id: 'b' }, { id: 'c', needs: ['b'] }])).toBe(true);
    expect(isLine([{ id: 'a', needs: [] }, { id: 'b' }])).toBe(true);
    expect(isLine([{ id: 'a' }, { id: 'b', needs: [] }])).toBe(false);
    expect(isLine([{ id: 'a' }, { id: 'b' }, { id: 'c', needs: ['a'] }])).toBe(false);
  });
});

describe('when', () => {
  const steps: GraphStep[] = [
    { id: 'build' },
    { id: 'deploy', when: { expr: "ref == 'main'" } },
    { id: 'notify-failure', needs: ['deploy'], when: { status: ['failure'] } },
  ];
  const { needs } = resolveNeeds(steps);
  const cond = (value: boolean) => () => ({ value });

  it('a step whose expression is false is skipped with the reason; one that is true is readied', () => {
    const no = planGraph(steps, needs, ['succeeded', 'waiting', 'waiting'], { failFast: true, condition: cond(false) });
    expect(no.skipped).toEqual([1, 2]);
    expect(no.reasons.get(1)).toBe("when.expr is false: ref == 'main'");
    expect(no.reasons.get(2)).toBe('when.status is [failure] and no step of the run failed');
    expect(planGraph(steps, needs, ['succeeded', 'waiting', 'waiting'], { failFast: true, condition: cond(true) }).ready).toEqual([1]);
  });

  it('a failure-status step runs once what it follows ended and a step failed', () => {
    const p = planGraph(steps, needs, ['succeeded', 'failed', 'waiting'], { failFast: true, condition: cond(true) });
    expect(p.ready).toEqual([2]);
  });

  it('an expression that cannot be evaluated fails the step, with the reason', () => {
    const p = planGraph(steps, needs, ['succeeded', 'waiting', 'waiting'], { failFast: true, condition: () => ({ error: 'unresolved attribute' }) });
    expect(p.failed.get(1)).toBe('when.expr could not be evaluated: unresolved attribute');
    expect(p.ready).toEqual([2]);
  });

  it('a pipeline with a condition is not a line', () => {
    expect(isLine(steps.map(({ needs: _, ...s }) => s))).toBe(false);
  });
});

describe('conditions (CEL)', () => {
  const msg = { v: 1 as const, runId: 'r', pipeline: { name: 'p', resource: 't', steps: [] }, resource: { type: 't', name: 'app', version: 3, spec: { ref: 'release/1.2', repository: 'file:///x' }, metadata: {} }, stepIndex: 0, mode: 'normal' as const, outputs: {}, createdAt: '' };
  const inputs = conditionInputs(msg, { build: { status: 'succeeded', data: { version: '1.2.3' } } });

  it('sees the ref, the resource, its version and the steps so far', () => {
    expect(evaluateCondition("ref.startsWith('release/') && version > 2", inputs)).toEqual({ value: true });
    expect(evaluateCondition("ref == 'main'", inputs)).toEqual({ value: false });
    expect(evaluateCondition("resource.name == 'app' && spec.repository.startsWith('file:')", inputs)).toEqual({ value: true });
    expect(evaluateCondition("steps.build.status == 'succeeded' && steps.build.data.version == '1.2.3'", inputs)).toEqual({ value: true });
    expect(evaluateCondition("ref.matches('^release/[0-9.]+$')", inputs)).toEqual({ value: true });
  });

  it('says why an expression cannot be evaluated or is not a bool, and refuses one that does not compile', () => {
    expect(evaluateCondition('nosuch == 1', inputs)).toEqual({ error: expect.stringMatching(/unresolved|undeclared|no such/i) });
    expect(evaluateCondition('version + 1', inputs)).toEqual({ error: 'it gave an int, not a bool' });
    expect(conditionProblem({ expr: "ref ==" })).toMatch(/^when\.expr does not compile: /);
    expect(conditionProblem({ status: ['sometimes' as never] })).toBe('when.status must be a non-empty list of "success", "failure", "always"');
    expect(conditionProblem({ expr: "ref == 'main'", status: ['success'] })).toBeUndefined();
  });
});
