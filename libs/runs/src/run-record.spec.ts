import type { Pipeline, Resource, RunEvent, RunRecord, StepMessage } from '@conveyor/contracts';
import { applyEvent, firstStepMessage, firstStepMessageOf, newRun, recordEvents, runFromFirstWork } from './run-record';

const pipeline: Pipeline = {
  name: 'p', description: '', resource: 'r', createdAt: '', updatedAt: '',
  steps: [
    { id: 'a', name: 'A', driver: 'd1' },
    { id: 'b', name: 'B', driver: 'd2' },
    { id: 'c', name: 'C', driver: 'd3', always: true },
  ],
};
const resource: Resource = { name: 'x', resource: 'r', spec: {}, metadata: {}, version: 3, createdAt: '' };
const ev = (e: Partial<RunEvent>): RunEvent => ({ v: 1, runId: 'id', scope: 'step', kind: 'started', at: '2026-01-01T00:00:00.000Z', ...e }) as RunEvent;

describe('applyEvent', () => {
  const events: RunEvent[] = [
    ev({ stepId: 'a', kind: 'started', attempt: 1, agent: 'ag1', at: '2026-01-01T00:00:01.000Z' }),
    ev({ stepId: 'a', kind: 'retrying', attempt: 1, message: 'flaky', at: '2026-01-01T00:00:02.000Z' }),
    ev({ stepId: 'a', kind: 'started', attempt: 2, agent: 'ag2', at: '2026-01-01T00:00:03.000Z' }),
    ev({ stepId: 'a', kind: 'failed', attempt: 2, message: 'broken', at: '2026-01-01T00:00:04.000Z' }),
    ev({ stepId: 'b', kind: 'skipped', attempt: 0, at: '2026-01-01T00:00:04.000Z' }),
    ev({ stepId: 'c', kind: 'started', attempt: 1, at: '2026-01-01T00:00:05.000Z' }),
    ev({ stepId: 'c', kind: 'succeeded', attempt: 1, at: '2026-01-01T00:00:06.000Z' }),
    ev({ scope: 'run', kind: 'failed', message: 'step "A" failed: broken', at: '2026-01-01T00:00:07.000Z' }),
  ];

  it('folds a run to its final state', () => {
    const run = events.reduce(applyEvent, newRun('id', pipeline, resource, new Date('2026-01-01T00:00:00.000Z')));
    expect(run.status).toBe('failed');
    expect(run.message).toContain('broken');
    expect(run.steps.map((s) => [s.id, s.status, s.attempts])).toEqual([['a', 'failed', 2], ['b', 'skipped', 0], ['c', 'succeeded', 1]]);
    expect(run.steps[0]).toMatchObject({ agent: 'ag2', startedAt: '2026-01-01T00:00:01.000Z', durationMs: 3000 });
    expect(run.resource.version).toBe(3);
  });

  it('gives the same record whatever the order and with duplicates', () => {
    const expected = events.reduce(applyEvent, newRun('id', pipeline, resource, new Date('2026-01-01T00:00:00.000Z')));
    for (let seed = 1; seed <= 20; seed++) {
      const shuffled = [...events, ...events.slice(0, 3)].map((e, i) => ({ e, k: (i * 7919 * seed) % 101 })).sort((x, y) => x.k - y.k).map((x) => x.e);
      const got = shuffled.reduce(applyEvent, newRun('id', pipeline, resource, new Date('2026-01-01T00:00:00.000Z')));
      expect(got).toEqual(expected);
    }
  });
});

describe('recordEvents + applyEvent: a run\'s log folded', () => {
  const t = (s: number) => `2026-01-01T00:00:0${s}.000Z`;
  const at = (kind: 'claim' | 'release' | 'retry', stepId: string, stepIndex: number, attempt: number, agent: string, s: number): RunRecord => ({
    kind, record: { v: 1, kind, runId: 'id', stepIndex, stepId, attempt, agent, machine: 'm', at: t(s) },
  });
  const base = { v: 1 as const, runId: 'id', pipeline: { name: 'p', resource: 'r', steps: pipeline.steps }, resource: { type: 'r', name: 'x', version: 3, spec: {}, metadata: {} }, outputs: {}, createdAt: t(0) };
  const log: Array<[number, RunRecord]> = [
    [1, { kind: 'work', msg: { ...base, stepIndex: 0, mode: 'normal' } }],
    [2, at('claim', 'a', 0, 1, 'ag1', 1)],
    [3, at('release', 'a', 0, 1, 'ag1', 2)],
    [4, at('claim', 'a', 0, 1, 'ag2', 3)],
    [5, { kind: 'work', msg: { ...base, stepIndex: 2, mode: 'cleanup', outcome: { status: 'failed', message: 'x' }, skipped: [1], from: { stepIndex: 0, stepId: 'a', attempt: 1, status: 'failed', message: 'boom', agent: 'ag2', machine: 'm', at: t(4) } } }],
    [6, at('claim', 'c', 2, 1, 'ag3', 5)],
    [7, { kind: 'end', end: { v: 1, kind: 'end', runId: 'id', status: 'failed', message: 'step "A" failed: boom', from: { stepIndex: 2, stepId: 'c', attempt: 1, status: 'succeeded', agent: 'ag3', machine: 'm', at: t(6) }, at: t(6) } }],
  ];
  const events = log.flatMap(([seq, r]) => recordEvents(r, seq));
  const fresh = () => runFromFirstWork((log[0][1] as { msg: StepMessage }).msg);

  it('folds to the run\'s final state; a released attempt started again is the same attempt', () => {
    const run = events.reduce(applyEvent, fresh());
    expect(run.status).toBe('failed');
    expect(run.steps.map((s) => [s.id, s.status, s.attempts, s.agent])).toEqual([['a', 'failed', 1, 'ag2'], ['b', 'skipped', 0, undefined], ['c', 'succeeded', 1, 'ag3']]);
  });

  it('gives one answer whatever the order of records, with duplicates, and is never terminal with a step still running', () => {
    const expected = events.reduce(applyEvent, fresh());
    for (let seed = 1; seed <= 30; seed++) {
      // A record's facts are folded together (the projector folds whole records), records in any order.
      const shuffled = [...log, ...log.slice(1, 4)].map((r, i) => ({ r, k: (i * 7919 * seed) % 101 })).sort((x, y) => x.k - y.k).map((x) => x.r);
      let run = fresh();
      for (const [seq, r] of shuffled) {
        run = recordEvents(r, seq).reduce(applyEvent, run);
        if (run.status === 'failed') expect(run.steps.filter((s) => s.status === 'running')).toEqual([]);
      }
      expect(run).toEqual(expected);
    }
  });
});

describe('a start recorded beside the log', () => {
  it('never makes a step that ended (skipped by the gateway) run again, so the run can end', () => {
    const msg: StepMessage = { v: 1, runId: 'id', pipeline: { name: 'p', resource: 'r', steps: pipeline.steps }, resource: { type: 'r', name: 'x', version: 3, spec: {}, metadata: {} }, stepIndex: 0, mode: 'normal', outputs: {}, createdAt: '2026-01-01T00:00:00.000Z' };
    const skip: RunRecord = { kind: 'work', msg: { ...msg, stepIndex: 2, mode: 'cleanup', outcome: { status: 'cancelled', message: 'c' }, skipped: [1], from: { stepIndex: 0, stepId: 'a', attempt: 0, status: 'skipped', at: '2026-01-01T00:00:01.000Z' } } };
    const lateStart: RunRecord = { kind: 'started', record: { v: 1, kind: 'started', runId: 'id', stepIndex: 0, stepId: 'a', attempt: 1, agent: 'ag', machine: 'm', at: '2026-01-01T00:00:01.000Z' } };
    const end: RunRecord = { kind: 'end', end: { v: 1, kind: 'end', runId: 'id', status: 'cancelled', message: 'c', from: { stepIndex: 2, stepId: 'c', attempt: 1, status: 'succeeded', agent: 'ag', at: '2026-01-01T00:00:02.000Z' }, at: '2026-01-01T00:00:02.000Z' } };
    for (const order of [[skip, lateStart, end], [lateStart, skip, end], [skip, end, lateStart], [end, lateStart, skip]] as Array<RunRecord[]>) {
      const run = order.reduce((r, rec, i) => recordEvents(rec, rec === skip ? 2 : rec === lateStart ? 3 : 4).reduce(applyEvent, r), runFromFirstWork(msg));
      expect([run.status, run.steps.map((s) => s.status)]).toEqual(['cancelled', ['skipped', 'skipped', 'succeeded']]);
    }
  });
});

describe('firstStepMessageOf', () => {
  it('is, but for the run id and time, the first step message of the run newRun makes (matrices expanded, notify and failFast kept)', () => {
    const p: Pipeline = {
      ...pipeline,
      failFast: false,
      notify: [{ type: 'webhook', url: 'http://127.0.0.1:9/hook' } as never],
      steps: [...pipeline.steps, { id: 'm', name: 'M', driver: 'd1', matrix: { os: ['a', 'b'] } }],
    };
    const r: Resource = { ...resource, spec: { big: 'x'.repeat(100) }, metadata: { k: 'v' } };
    const run = newRun('0'.repeat(26), p, r, new Date(0));
    expect(firstStepMessageOf(p, r)).toEqual(firstStepMessage(run, r));
    expect(JSON.stringify(firstStepMessageOf(p, r)).length).toBe(JSON.stringify(firstStepMessage(run, r)).length);
    expect(firstStepMessageOf(p, r).pipeline.steps.map((s) => s.id)).toEqual(run.pipeline.steps.map((s) => s.id));
    expect(run.pipeline.steps.length).toBe(5);
  });
});
