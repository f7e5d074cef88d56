import { NatsServer } from '../support/nats-server';
import { waitFor } from '../support/processes';
import { TestSystem } from '../support/system';

jest.setTimeout(120_000);

/**
 * Users of this server: `admin` may do anything (the gateway, and agents by default); `nomake`
 * may do anything but make the consumers of driver "beta" (a JetStream API call that fails, as
 * one that a busy server answers late would stall).
 */
const AUTH = `
authorization {
  users = [
    { user: admin, password: admin-pass }
    { user: nomake, password: nomake-pass, permissions: {
        publish: { allow: [">"], deny: ["$JS.API.CONSUMER.CREATE.CONVEYOR_RUNS.beta", "$JS.API.CONSUMER.CREATE.CONVEYOR_RUNS.beta.>", "$JS.API.CONSUMER.DURABLE.CREATE.CONVEYOR_RUNS.beta"] }
        subscribe: [">"] } }
  ]
}
`;

/**
 * A hand-off is one fenced write to the run's log and nothing else: making sure the next
 * driver's consumer exists goes beside it, never before it, so a hand-off never waits on the
 * JetStream API. A consumer that could not be made is made by the gateway's reconciler.
 */
describe('hand-offs and the next driver\'s consumer', () => {
  let sys: TestSystem;

  beforeAll(async () => {
    const admin = { CONVEYOR_NATS_USER: 'admin', CONVEYOR_NATS_PASS: 'admin-pass' };
    sys = await TestSystem.on(await NatsServer.start({ config: AUTH, wire: { user: 'admin', pass: 'admin-pass' } }), {}, { ...admin, CONVEYOR_RECONCILE_INTERVAL: '1s' });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('an agent that cannot make the next driver\'s consumer still hands the run on at once, and the run goes on', async () => {
    await sys.startDriver(['alpha'], { CONVEYOR_NATS_USER: 'nomake', CONVEYOR_NATS_PASS: 'nomake-pass' });
    const id = await sys.run([{ driver: 'alpha' }, { driver: 'beta' }]);
    // Stored at once: step 1 ended and step 2 waits (before, the hand-off waited on the
    // consumer's making, retried for up to 60 s).
    const waiting = await waitFor('the hand-off to be stored', async () => {
      const run = await sys.api.run(id);
      return run.steps[0].status === 'succeeded' ? run : undefined;
    }, 10_000, 100);
    expect(waiting.steps[1].status).toBe('pending');
    // Nobody made beta's consumer; the gateway's reconciler does, and an agent of beta finds the work.
    await sys.startDriver(['beta'], { CONVEYOR_NATS_USER: 'admin', CONVEYOR_NATS_PASS: 'admin-pass' });
    const run = await sys.waitForRun(id, undefined, 30_000);
    expect(run.status).toBe('succeeded');
    expect(sys.journalOf(id).filter((j) => j.what === 'start').map((j) => j.step)).toEqual(['s1', 's2']);
  });
});
