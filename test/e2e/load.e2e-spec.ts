import { TestSystem } from '../support/system';
import { waitFor } from '../support/processes';

jest.setTimeout(180_000);

describe('200 concurrent runs', () => {
  let sys: TestSystem;

  beforeAll(async () => {
    sys = await TestSystem.start({ CONVEYOR_CONCURRENCY: '8' });
    await Promise.all([sys.startDriver(['a', 'b', 'c', 'd']), sys.startDriver(['a', 'b', 'c', 'd'])]);
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('all reach the right final state', async () => {
    const ok = await sys.pipeline([{ driver: 'a' }, { driver: 'b' }, { driver: 'c' }, { driver: 'd', always: true }]);
    const bad = await sys.pipeline([{ driver: 'a' }, { driver: 'b', config: { failTimes: 1 } }, { driver: 'c' }, { driver: 'd', always: true }]);
    const expected = new Map<string, 'succeeded' | 'failed'>();
    for (let batch = 0; batch < 4; batch++) {
      const ids = await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          const failing = i % 4 === 0;
          const id = await sys.trigger(failing ? bad : ok);
          expected.set(id, failing ? 'failed' : 'succeeded');
        }),
      );
      expect(ids).toHaveLength(50);
    }
    expect(expected.size).toBe(200);
    const final = await waitFor('200 runs to finish', async () => {
      const runs = await sys.api.ok<Array<{ id: string; status: string }>>('GET', '/runs?limit=500');
      const done = runs.filter((r) => expected.has(r.id) && ['succeeded', 'failed', 'cancelled'].includes(r.status));
      return done.length === 200 ? done : undefined;
    }, 150_000, 500);
    for (const r of final) expect(`${r.id} ${r.status}`).toBe(`${r.id} ${expected.get(r.id)}`);
    // Spot-check whole records: steps and cleanup are right too.
    const failedRun = await sys.api.run(final.find((r) => r.status === 'failed')!.id);
    expect(failedRun.steps.map((s) => s.status)).toEqual(['succeeded', 'failed', 'skipped', 'succeeded']);
    const okRun = await sys.api.run(final.find((r) => r.status === 'succeeded')!.id);
    expect(okRun.steps.every((s) => s.status === 'succeeded' && s.attempts === 1)).toBe(true);
  });
});
