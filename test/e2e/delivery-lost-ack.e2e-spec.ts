import { NatsServer } from '../support/nats-server';
import { waitFor, type AppProcess } from '../support/processes';
import { TestSystem } from '../support/system';

jest.setTimeout(120_000);

const PASS = 'lost-ack-test-password';
/**
 * The "unacked" user may do everything but ack: every step its agent finishes is handed on
 * and then redelivered an ack wait later, as if the agent had died between the two — again
 * and again, long after the step ended.
 */
const USERS = `authorization {
  users = [
    { user: conveyor, password: ${PASS} }
    { user: unacked, password: ${PASS}, permissions: { publish: { deny: ["$JS.ACK.>"] } } }
  ]
}
`;

describe('a step whose agent stopped after its hand-off and before its ack', () => {
  let sys: TestSystem;
  let unacked: AppProcess;

  beforeAll(async () => {
    const nats = await NatsServer.start({ config: USERS, wire: { user: 'conveyor', pass: PASS } });
    sys = await TestSystem.on(nats, {}, { CONVEYOR_NATS_USER: 'conveyor', CONVEYOR_NATS_PASS: PASS });
    unacked = await sys.startDriver(['unacked'], { CONVEYOR_NATS_USER: 'unacked', CONVEYOR_ACK_WAIT: '2s' });
    await sys.startDriver(['next']);
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('is not run again: the redelivery finds the step ended in its run\'s log, and the next step runs once', async () => {
    const id = await sys.run([{ driver: 'unacked' }, { driver: 'next', config: { sleepMs: 6_000 } }]);
    // Redeliveries while the run still goes on (the next step sleeps): each finds the outcome.
    await waitFor('two redeliveries of the finished step', () => ((unacked.logs.match(/step s1 not run: the (step has ended and the )?run moved on/g)?.length ?? 0) >= 2 ? true : undefined), 30_000, 100);
    const run = await sys.waitForRun(id);
    expect(run.status).toBe('succeeded');
    expect(run.steps.map((s) => s.status)).toEqual(['succeeded', 'succeeded']);
    const starts = sys.journalOf(id).filter((j) => j.what === 'start');
    expect(starts.filter((j) => j.step === 's1')).toHaveLength(1);
    expect(starts.filter((j) => j.step === 's2')).toHaveLength(1);
    // The next step got the first step's output, as from the first hand-off.
    expect(run.steps[0].data).toMatchObject({ attempt: 1 });
  });
});
