import { NatsServer } from '../support/nats-server';
import { waitFor } from '../support/processes';
import { TestSystem } from '../support/system';

jest.setTimeout(120_000);

/**
 * "It never hangs": step work that no live agent can take fails its run after
 * CONVEYOR_DRIVER_GRACE, saying why; the run's cleanup still runs when an agent comes.
 */
describe('work no agent can take', () => {
  let sys: TestSystem;

  beforeAll(async () => {
    sys = await TestSystem.on(await NatsServer.start(), {}, { CONVEYOR_DRIVER_GRACE: '3s' });
    await sys.startDriver(['tidy']);
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('fails a run whose driver never had an agent (a misspelt name), and runs its cleanup once one comes', async () => {
    const id = await sys.run([{ driver: 'bulider' }, { driver: 'tidy', always: true }]);
    const run = await sys.waitForRun(id, ['failed'], 30_000);
    expect(run.message).toBe('no agent of driver "bulider" has been alive for 3s: is an agent of it running, and is the pipeline\'s driver name right?');
    expect(run.steps[0].status).toBe('failed');
    // An agent of that name comes after all: it does not run the step of the failed run, and
    // hands on to the cleanup step, which runs.
    await sys.startDriver(['bulider']);
    const after = await waitFor('the cleanup step to run', async () => {
      const r = await sys.api.run(id);
      return r.steps[1].status === 'succeeded' ? r : undefined;
    }, 30_000, 100);
    expect(after.status).toBe('failed');
    expect(after.steps.map((s) => s.status)).toEqual(['skipped', 'succeeded']);
    const starts = sys.journalOf(id).filter((j) => j.what === 'start').map((j) => j.step);
    expect(starts).toEqual(['s2']);
  });

  it('runs a cleanup step whose agent died in it once an agent comes back, after the run failed', async () => {
    await sys.startDriver(['sweeper']);
    // The sweeper's first attempt kills its own process, mid-step.
    const id = await sys.run([{ driver: 'tidy' }, { driver: 'sweeper', always: true, config: { crashOnAttempt: 1 } }]);
    const failed = await sys.waitForRun(id, ['failed'], 30_000);
    expect(failed.message).toMatch(/^no agent of driver "sweeper"/);
    await sys.startDriver(['sweeper']);
    await waitFor('the cleanup step to run again', () => (sys.journalOf(id).some((j) => j.step === 's2' && j.attempt === 2 && j.what === 'done') ? true : undefined), 30_000, 100);
    expect(sys.journalOf(id).filter((j) => j.step === 's2' && j.what === 'start').map((j) => j.attempt)).toEqual([1, 2]);
  });

  it('fails a run whose driver had agents that are all gone', async () => {
    const gone = await sys.startDriver(['gone']);
    await gone.stop('SIGKILL');
    const id = await sys.run([{ driver: 'gone' }]);
    const run = await sys.waitForRun(id, ['failed'], 30_000);
    expect(run.message).toMatch(/^no agent of driver "gone" has been alive for 3s/);
  });

  it('leaves alone work that waits for a live agent', async () => {
    const id = await sys.run([{ driver: 'tidy', config: { sleepMs: 5_000 } }, { driver: 'tidy' }]);
    const run = await sys.waitForRun(id, ['succeeded', 'failed'], 30_000);
    expect(run.status).toBe('succeeded');
  });
});
