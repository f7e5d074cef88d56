import type { Pipeline, Resource, RunEvent } from '@conveyor/contracts';
import { applyEvent, newRun } from './run-record';

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
