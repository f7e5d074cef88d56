import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import type { WireSchemaName } from '@conveyor/wire-schemas';
import { TestSystem } from '../support/system';
import { waitFor } from '../support/processes';
import { enableWireCheck, type WireCheck } from '../support/wire-check';

jest.setTimeout(60_000);
// On here whatever CONVEYOR_WIRE_CHECK says: checking is what this suite is for.
enableWireCheck();

/**
 * docs/protocol.md against real traffic: one system drives runs that make every kind of
 * message a driver sends or reads (success with logs on a pinned machine, failure and cleanup,
 * a retry, a cancel, a graph, poison), while the wire check (test/support/wire-check.ts) holds
 * each message to the schema of its subject. Every other e2e suite is checked the same way at
 * its end; this one also proves the check saw each kind, so a clean result is not a blind one.
 */
describe('the wire protocol, on real traffic', () => {
  let sys: TestSystem;
  let wire: WireCheck;

  beforeAll(async () => {
    sys = await TestSystem.start();
    wire = sys.nats.wire!;
    await sys.startDriver(['alpha', 'beta', 'cleanup', 'pin'], { CONVEYOR_MACHINE_ID: 'm1', TEST_PINNING_DRIVERS: 'pin' });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('is on: the check watches the server the system runs on', () => {
    expect(wire).toBeDefined();
  });

  it('every message of a representative set of runs satisfies its schema', async () => {
    const ok = await sys.run([{ driver: 'pin', config: { lines: 3 } }, { driver: 'alpha', config: { lines: 2 } }, { driver: 'cleanup', always: true }]);
    const failed = await sys.run([{ driver: 'alpha', config: { failTimes: 9 } }, { driver: 'beta' }, { driver: 'cleanup', always: true }]);
    const retried = await sys.run([{ driver: 'alpha', retries: 1, config: { failTimes: 1 } }]);
    const graph = await sys.run([
      { id: 'a', driver: 'alpha', needs: [] },
      { id: 'b', driver: 'beta', needs: ['a'] },
      { id: 'c', driver: 'alpha', needs: ['a'] },
      { id: 'z', driver: 'cleanup', needs: ['b', 'c'], always: true },
    ]);
    const cancelled = await sys.run([{ driver: 'alpha', config: { sleepMs: 30_000 } }, { driver: 'cleanup', always: true }]);
    await waitFor('the long step to start', async () => ((await sys.api.run(cancelled)).steps[0].status === 'running' ? true : undefined), 20_000);
    expect((await sys.api.request('POST', `/runs/${cancelled}/cancel`)).status).toBe(202);

    const status = async (id: string) => (await sys.waitForRun(id, undefined, 30_000)).status;
    expect([await status(ok), await status(failed), await status(retried), await status(graph), await status(cancelled)]).toEqual(['succeeded', 'failed', 'succeeded', 'succeeded', 'cancelled']);
    expect((await sys.api.run(ok)).steps[0].machine).toBe('m1');

    // Poison on a driver's subject: it breaks the protocol on purpose; its dead letter must not.
    wire.expectViolations(/^conveyor\.steps\.01c{24}\.s1\.alpha\.any$/);
    const nc = await connect({ servers: sys.nats.url });
    try {
      await jetstream(nc).publish(`conveyor.steps.01${'c'.repeat(24)}.s1.alpha.any`, 'not a step message');
    } finally {
      await nc.close();
    }
    // Its dead letter, the logs' end of the last run to end, and a heartbeat reach the check too.
    const state = await waitFor('every kind of message to be seen', async () => {
      const now = await wire.state();
      return KINDS.every((k) => (now.seen[k] ?? 0) > 0) ? now : undefined;
    }, 15_000);
    expect(state.violations).toEqual([]);
    expect(state.violationCount).toBe(0);
    expect(state.missed).toEqual([]);
  });
});

/** What a driver sends or reads (docs/protocol.md §3); ticks and reports are the gateways' own. */
const KINDS: WireSchemaName[] = ['step-message', 'step-record', 'step-done', 'run-end', 'log-line', 'logs-end', 'cancel-signal', 'cancels-entry', 'agent-info', 'dead-letter'];
