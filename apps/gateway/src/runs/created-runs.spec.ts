import type { Run } from '@conveyor/contracts';
import { CreatedRuns } from './created-runs';

const record = (id: string, revision = 7) => ({ value: { id } as Run, revision });

describe('CreatedRuns', () => {
  afterEach(() => jest.useRealTimers());

  it('hands the record a start stored to the projector once, waiting for the start to finish', async () => {
    const created = new CreatedRuns();
    const done = created.starting('r1');
    const taken = created.take('r1');
    done(record('r1'));
    await expect(taken).resolves.toEqual(record('r1'));
    // Taken: a second fold of the run reads what it stored itself.
    await expect(created.take('r1')).resolves.toBeUndefined();
  });

  it('gives nothing for a run another gateway started, or one whose start stored no record', async () => {
    const created = new CreatedRuns();
    await expect(created.take('elsewhere')).resolves.toBeUndefined();
    created.starting('lost')();
    await expect(created.take('lost')).resolves.toBeUndefined();
  });

  it('waits at most a second for a start that does not finish', async () => {
    jest.useFakeTimers();
    const created = new CreatedRuns();
    created.starting('slow');
    const taken = created.take('slow');
    jest.advanceTimersByTime(999);
    let settled = false;
    void taken.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    jest.advanceTimersByTime(1);
    await expect(taken).resolves.toBeUndefined();
  });

  it('keeps the last 1000 starts: the oldest, never taken, are forgotten', async () => {
    const created = new CreatedRuns();
    for (let i = 0; i <= 1000; i++) created.starting(`r${i}`)(record(`r${i}`, i));
    await expect(created.take('r0')).resolves.toBeUndefined();
    await expect(created.take('r1')).resolves.toEqual(record('r1', 1));
    await expect(created.take('r1000')).resolves.toEqual(record('r1000', 1000));
  });
});
