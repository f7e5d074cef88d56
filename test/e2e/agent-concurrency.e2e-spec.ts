import { readFileSync } from 'node:fs';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { waitFor } from '../support/processes';
import { TestSystem } from '../support/system';

jest.setTimeout(180_000);

const STREAM = 'CONVEYOR_RUNS';

/**
 * An agent serves each driver from two consumers: the driver's shared one (work for any
 * machine) and its machine's (work pinned to it). CONVEYOR_CONCURRENCY bounds both together.
 */
describe("an agent's concurrency and consumers", () => {
  let sys: TestSystem;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    sys = await TestSystem.start();
    nc = await connect({ servers: sys.nats.url });
    jsm = await jetstreamManager(nc);
    // Pins each run to machine m1, so the run's next step waits on `<driver>_m1`.
    await sys.startDriver(['pin'], { CONVEYOR_MACHINE_ID: 'm1', CONVEYOR_CONCURRENCY: '8', TEST_PINNING_DRIVERS: 'pin' });
  });
  afterAll(async () => {
    await nc?.close();
    await sys?.stop();
  });

  const consumer = (name: string) => jsm.consumers.info(STREAM, name);
  const starts = (id: string, step: string) => sys.journalOf(id).filter((j) => j.step === step && j.what === 'start');

  /** The most handlers `agent` ran at once, from the journal (one process appends its lines in order). */
  const mostAtOnce = (agent: string) => {
    let now = 0;
    let most = 0;
    for (const line of readFileSync(sys.journal, 'utf8').split('\n')) {
      const [, , , who, what] = line.split(' ');
      if (who !== agent) continue;
      if (what === 'start') most = Math.max(most, ++now);
      if (what === 'end') now--;
    }
    return most;
  };

  it('CONVEYOR_CONCURRENCY=1 with shared and pinned work waiting: one step at a time, and every run succeeds on its first attempt', async () => {
    const sleepy = { driver: 'capped', config: { sleepMs: 2_000 } };
    const pinned = await sys.pipeline([{ driver: 'pin' }, sleepy]);
    const shared = await sys.pipeline([sleepy]);
    const ids = [...(await Promise.all([1, 2, 3].map(() => sys.trigger(pinned)))), ...(await Promise.all([1, 2, 3].map(() => sys.trigger(shared))))];
    // Both kinds of work wait before the agent comes: its two consumers deliver at once.
    await waitFor('3 pinned and 3 shared steps to wait', async () => {
      const [p, s] = await Promise.all([consumer('capped_m1'), consumer('capped')]);
      return p.num_pending === 3 && s.num_pending === 3 ? true : undefined;
    }, 30_000, 100);

    const agent = await sys.startDriver(['capped'], { CONVEYOR_MACHINE_ID: 'm1', CONVEYOR_CONCURRENCY: '1' });
    const runs = await Promise.all(ids.map((id) => sys.waitForRun(id, undefined, 90_000)));
    for (const run of runs) {
      expect(`${run.id} ${run.status}`).toBe(`${run.id} succeeded`);
      const step = run.steps[run.steps.length - 1];
      expect(step).toMatchObject({ agent: agent.agentId, attempts: 1 });
      expect(starts(run.id, step.id)).toHaveLength(1);
    }
    // Not counted by sampling num_ack_pending: it also counts a message handed back until it is
    // delivered again, which here only this agent does, once it has a free slot.
    expect(mostAtOnce(agent.agentId!)).toBe(1);
    await agent.stop('SIGKILL');
  });

  it('after a burst, an idle agent pulls each consumer once an expiry, not once for every slot that came free', async () => {
    await sys.startDriver(['lull'], { CONVEYOR_CONCURRENCY: '16' });
    const pipeline = await sys.pipeline([{ driver: 'lull', config: { sleepMs: 1_000 } }]);
    // 16 steps ending one after another: each frees its slot alone, and a pull is made for it.
    const ids: string[] = [];
    for (let i = 0; i < 16; i++) {
      ids.push(await sys.trigger(pipeline));
      await new Promise((r) => setTimeout(r, 60));
    }
    for (const id of ids) expect((await sys.waitForRun(id)).status).toBe('succeeded');
    // Idle from here: the pulls made during the burst all expire at the next instant of the
    // agent's 30 s grid (or the one after, for a pull made within a second of it), and are made
    // again as one.
    const pulls: Array<{ batch: number }> = [];
    const sub = nc.subscribe(`$JS.API.CONSUMER.MSG.NEXT.${STREAM}.lull`, { callback: (_e, m) => void pulls.push(m.json()) });
    await new Promise((r) => setTimeout(r, 32_000));
    sub.unsubscribe();
    // Before: one pull per slot that had come free, each made again on its own schedule (about
    // 30 in 10 s with 5 s pulls).
    expect(pulls.length).toBeGreaterThanOrEqual(1);
    expect(pulls.length).toBeLessThanOrEqual(2);
    expect(pulls[0].batch).toBeGreaterThan(1);
  }, 90_000);

  it('steps one after another on an agent with slots to spare: a pull is made for a quarter of its slots, not for each step that ends', async () => {
    await sys.startDriver(['steady'], { CONVEYOR_CONCURRENCY: '16' });
    const pipeline = await sys.pipeline([{ driver: 'steady' }]);
    expect((await sys.waitForRun(await sys.trigger(pipeline))).status).toBe('succeeded');
    const pulls: Array<{ batch: number }> = [];
    const sub = nc.subscribe(`$JS.API.CONSUMER.MSG.NEXT.${STREAM}.steady`, { callback: (_e, m) => void pulls.push(m.json()) });
    await nc.flush();
    // 12 runs, each started when the one before ended: one step in a slot at a time, while a
    // pull for the other slots waits on the consumer and delivers each step as it comes.
    for (let i = 0; i < 12; i++) expect((await sys.waitForRun(await sys.trigger(pipeline))).status).toBe('succeeded');
    await nc.flush();
    sub.unsubscribe();
    // Before: one pull of one message for every step that ended (12). Now: one of 4 for every
    // 4 (3), and at most one more where the waiting pull expired on the way.
    expect(pulls.length).toBeGreaterThanOrEqual(2);
    expect(pulls.length).toBeLessThanOrEqual(4);
  });

  it("an agent whose consumers an operator deleted makes them again and keeps serving, without re-running their kept work", async () => {
    const agent = await sys.startDriver(['phoenix'], { CONVEYOR_MACHINE_ID: 'm1' });
    const pinned = await sys.pipeline([{ driver: 'pin' }, { driver: 'phoenix' }]);
    const shared = await sys.pipeline([{ driver: 'phoenix' }]);
    // Runs before: the writers of the work (gateway, pinning agent) now take both consumers as made.
    const before = [await sys.trigger(pinned), await sys.trigger(shared)];
    for (const id of before) expect((await sys.waitForRun(id)).status).toBe('succeeded');

    await jsm.consumers.delete(STREAM, 'phoenix');
    await jsm.consumers.delete(STREAM, 'phoenix_m1');
    const after = [await sys.trigger(pinned), await sys.trigger(shared)];
    for (const id of after) expect((await sys.waitForRun(id, undefined, 30_000)).status).toBe('succeeded');
    const names: string[] = [];
    for await (const c of jsm.consumers.list(STREAM)) names.push(c.name);
    expect(names).toEqual(expect.arrayContaining(['phoenix', 'phoenix_m1']));

    // The new consumers deliver the earlier runs' work again (deliver policy all): judged, not run.
    await waitFor('the kept work to be judged', () => ((agent.logs.match(/not run: the run has ended/g)?.length ?? 0) >= 2 ? true : undefined), 20_000);
    expect(starts(before[0], 's2')).toHaveLength(1);
    expect(starts(before[1], 's1')).toHaveLength(1);
    await agent.stop('SIGKILL');
  });
});
