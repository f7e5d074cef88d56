import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { NatsServer } from '../support/nats-server';
import { waitFor } from '../support/processes';
import { TestSystem } from '../support/system';

jest.setTimeout(120_000);

/**
 * "It never hangs": step work that no live agent can take fails after CONVEYOR_DRIVER_GRACE,
 * saying why, and the run goes on to its cleanup steps at once; a cleanup step nobody can
 * take ends the run (the build machine's janitor removes what it left). Work given up is withdrawn.
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

  /** Work a driver's consumer still holds for its agents: waiting or delivered and not acked. */
  const waiting = async (driver: string): Promise<number> => {
    const nc = await connect({ servers: sys.nats.url });
    try {
      const info = await (await jetstreamManager(nc)).consumers.info('CONVEYOR_RUNS', driver);
      return info.num_pending + info.num_ack_pending;
    } finally {
      await nc.close();
    }
  };

  it('while no work waits, its checks (every second here) read only the work queues, not the agents', async () => {
    const nc = await connect({ servers: sys.nats.url });
    const reads: string[] = [];
    try {
      const bucket = 'KV_conveyor-agents';
      for (const subject of [`$JS.API.STREAM.INFO.${bucket}`, `$JS.API.DIRECT.GET.${bucket}.>`, `$JS.API.DIRECT.GET.${bucket}`]) {
        nc.subscribe(subject, { callback: (_e, m) => void reads.push(m.subject) });
      }
      const lists: string[] = [];
      nc.subscribe('$JS.API.CONSUMER.LIST.CONVEYOR_RUNS', { callback: (_e, m) => void lists.push(m.subject) });
      await nc.flush();
      await new Promise((r) => setTimeout(r, 4_000));
      // The checks ran (each lists the consumers of the runs stream) and read no agent.
      expect(lists.length).toBeGreaterThanOrEqual(2);
      expect(reads).toEqual([]);
    } finally {
      await nc.close();
    }
  });

  it('fails the step of a driver that never had an agent (a misspelt name), and the run\'s cleanup runs', async () => {
    const id = await sys.run([{ driver: 'bulider' }, { driver: 'tidy', always: true }]);
    const run = await sys.waitForRun(id, ['failed'], 30_000);
    const why = 'no agent of driver "bulider" has been alive for 3s: is an agent of it running, and is the pipeline\'s driver name right?';
    expect(run.steps[0]).toMatchObject({ status: 'failed', message: why });
    expect(run.message).toBe(`step "step 1" failed: ${why}`);
    expect(run.steps[1].status).toBe('succeeded');
    // The given-up work was withdrawn: an agent of that name that comes after all gets nothing to run.
    await sys.startDriver(['bulider']);
    await waitFor('no work left for bulider', async () => ((await waiting('bulider')) === 0 ? true : undefined), 20_000, 250);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(sys.journalOf(id).filter((j) => j.what === 'start').map((j) => j.step)).toEqual(['s2']);
  });

  it('a cleanup step whose agent died in it, with no agent left: the run ends, saying why, and a returning agent does not run it', async () => {
    await sys.startDriver(['sweeper']);
    // The sweeper's first attempt kills its own process, mid-step.
    const id = await sys.run([{ driver: 'tidy' }, { driver: 'sweeper', always: true, config: { crashOnAttempt: 1 } }]);
    const failed = await sys.waitForRun(id, ['failed'], 30_000);
    expect(failed.message).toMatch(/^step "step 2" failed: no agent of driver "sweeper"/);
    expect(failed.steps.map((s) => s.status)).toEqual(['succeeded', 'failed']);
    await sys.startDriver(['sweeper']);
    await waitFor('no work left for sweeper', async () => ((await waiting('sweeper')) === 0 ? true : undefined), 20_000, 250);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(sys.journalOf(id).filter((j) => j.step === 's2' && j.what === 'start').map((j) => j.attempt)).toEqual([1]);
  });

  it('fails a run whose driver had agents that are all gone', async () => {
    const gone = await sys.startDriver(['gone']);
    await gone.stop('SIGKILL');
    const id = await sys.run([{ driver: 'gone' }]);
    const run = await sys.waitForRun(id, ['failed'], 30_000);
    expect(run.message).toMatch(/^step "step 1" failed: no agent of driver "gone" has been alive for 3s/);
  });

  it('leaves alone work that waits for a live agent', async () => {
    const id = await sys.run([{ driver: 'tidy', config: { sleepMs: 5_000 } }, { driver: 'tidy' }]);
    const run = await sys.waitForRun(id, ['succeeded', 'failed'], 30_000);
    expect(run.status).toBe('succeeded');
  });
});

describe('cancelling a run whose step waits for an agent that is not there', () => {
  it('skips the waiting step at once and runs the cleanup: the run ends cancelled without waiting for the driver', async () => {
    const sys = await TestSystem.on(await NatsServer.start(), {}, { CONVEYOR_DRIVER_GRACE: '5m' });
    try {
      await sys.startDriver(['tidy']);
      const id = await sys.run([{ driver: 'nobody-runs-me' }, { driver: 'tidy', always: true }]);
      await sys.api.ok('POST', `/runs/${id}/cancel`);
      const run = await sys.waitForRun(id, ['cancelled', 'failed', 'succeeded'], 20_000);
      expect(run.status).toBe('cancelled');
      expect(run.steps.map((s) => s.status)).toEqual(['skipped', 'succeeded']);
    } finally {
      await sys.stop();
    }
  });
});
