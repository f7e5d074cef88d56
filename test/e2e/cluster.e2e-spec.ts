import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Subjects, type Run } from '@conveyor/contracts';
import { storedState } from '../support/gateway';
import { NatsCluster } from '../support/nats-cluster';
import { waitFor } from '../support/processes';
import { TestSystem } from '../support/system';

jest.setTimeout(300_000);

const RUNS = 10;
const DRIVERS = ['c-one', 'c-two', 'c-three'];

/**
 * Issue 5: Conveyor on a 3-node JetStream cluster (booted from deploy/nats/cluster-N.conf)
 * with CONVEYOR_REPLICAS=3. A node is killed with SIGKILL while runs are in flight — the
 * node leading the steps stream, so its leadership must move — and every run still
 * finishes with nothing lost; the node comes back and catches up from the others.
 */
describe('a 3-node NATS cluster', () => {
  const s = new Subjects('conveyor');
  let cluster: NatsCluster;
  let sys: TestSystem<NatsCluster>;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    cluster = await NatsCluster.start();
    sys = await TestSystem.on(cluster, { CONVEYOR_CONCURRENCY: '2' }, { CONVEYOR_REPLICAS: '3' });
    // Two agents, each serving all three drivers: a kill of one NATS node hits both.
    await sys.startDriver(DRIVERS);
    await sys.startDriver(DRIVERS);
    nc = await connect({ servers: cluster.urls.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    jsm = await jetstreamManager(nc, { timeout: 10_000 });
  });
  afterAll(async () => {
    await nc?.close();
    // sys.stop() disposes of the cluster it runs on; without a sys, the cluster is ours to end.
    if (sys) await sys.stop();
    else await cluster?.dispose();
  });

  const streams = [s.runsStream, s.logsStream, s.deadLetterStream];
  const buckets = (['definitions', 'pipelines', 'resources', 'runs', 'cancels', 'agents'] as const).map((k) => `KV_${s.bucket(k)}`);

  it('keeps every stream and bucket in 3 replicas', async () => {
    for (const name of [...streams, ...buckets]) {
      const info = await jsm.streams.info(name);
      expect([name, info.config.num_replicas]).toEqual([name, 3]);
      expect(info.cluster?.replicas).toHaveLength(2);
    }
  });

  it('finishes every run when a node dies mid-run, loses nothing, and the node catches up when it returns', async () => {
    const pipeline = await sys.pipeline(DRIVERS.map((driver) => ({ driver, config: { sleepMs: 1_000 } })));
    const ids: string[] = [];
    for (let i = 0; i < RUNS; i++) ids.push(await sys.trigger(pipeline));

    // Kill once work is visibly under way (some steps done, most not), the steps stream's
    // leader: its stream must elect a new leader while agents are handing runs on.
    await waitFor('a few steps to finish', () => (doneSteps(ids) >= 3 ? true : undefined), 60_000, 50);
    expect(doneSteps(ids)).toBeLessThan(RUNS * DRIVERS.length);
    const leader = (await jsm.streams.info(s.runsStream)).cluster?.leader;
    expect(leader).toBeDefined();
    const victim = cluster.indexOf(leader!);
    await cluster.kill(victim, 'SIGKILL');

    const runs = await waitFor('every run to end', async () => {
      const all = await Promise.all(ids.map((id) => sys.api.run(id)));
      return all.every((r) => ['succeeded', 'failed', 'cancelled'].includes(r.status)) ? all : undefined;
    }, 120_000, 250).catch(async (err) => {
      // What a hang looks like is the lead to a fix: step states, and whether agents still pull.
      const all = await Promise.all(ids.map((id) => sys.api.run(id).catch(() => undefined)));
      const consumers = await Promise.all(DRIVERS.map((d) => jsm.consumers.info(s.runsStream, d).catch((e: Error) => e.message)));
      throw new Error(`${(err as Error).message}\nkilled node ${victim + 1} (${leader})\nruns: ${JSON.stringify(all.map((r) => r && [r.status, r.steps.map((st) => st.status)]))}\n`
        + `consumers: ${JSON.stringify(consumers.map((c) => (typeof c === 'string' ? c : [c.name, c.num_ack_pending, c.num_pending, c.num_waiting, c.cluster?.leader])))}\n`
        + sys.drivers.map((d) => `${d.agentId}: ${d.logs.slice(-1500)}`).join('\n'));
    });
    expect(runs.map((r) => [r.id, r.status])).toEqual(ids.map((id) => [id, 'succeeded']));
    for (const run of runs) expect(run.steps.map((st) => st.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    // The agents rode the failover out: neither process died.
    expect(sys.drivers.map((d) => [d.agentId, d.alive])).toEqual([['agent-1', true], ['agent-2', true]]);

    // Nothing lost: every definition, pipeline, resource version and run reads back. While a
    // node is down, nats-server 2.9 may place the ephemeral consumer behind a listing on the
    // dead peer, and that listing times out (503); a retry lands elsewhere. So each read
    // retries a 503 here (bounded); after the node is back the same reads must succeed at once.
    // A step's own events may still be on their way (retried across the failover) when a later
    // step already ended the run: the record is taken once every step's start and end are in.
    const stored = await waitFor('every step of every run to be recorded', async () => {
      const state = await storedState(sys.api.baseUrl, getRetrying503);
      return (state.runs as Run[]).every((r) => r.steps.every((st) => st.startedAt && st.finishedAt)) ? state : undefined;
    }, 30_000, 250);
    expect((stored.resources as Array<{ version: number }>).map((r) => r.version)).toEqual(ids.map(() => 1));
    expect(stored.versions).toHaveLength(RUNS);
    expect((stored.runs as Run[]).map((r) => r.id).sort()).toEqual([...ids].sort());
    // Exactly one end per run: hand-offs repeated across the failover were refused by the run's log.
    const finals = await jsm.streams.info(s.runsStream, { subjects_filter: 'conveyor.steps.*.end' });
    expect(Object.values(finals.state.subjects ?? {})).toEqual(ids.map(() => 1));

    // The node returns on its old store and catches up: its own copy of each stream reaches
    // what the two survivors hold (nothing is written any more; only heartbeats, in their bucket).
    await cluster.restart(victim);
    const survivors = [0, 1, 2].filter((i) => i !== victim);
    for (const name of [...streams, `KV_${s.bucket('runs')}`, `KV_${s.bucket('resources')}`]) {
      const caughtUp = await waitFor(`node ${victim + 1} to catch up on ${name}`, async () => {
        const [mine, a, b] = await Promise.all([victim, ...survivors].map((i) => cluster.localStreamState(i, name)));
        return mine && a && b && same(mine, a) && same(mine, b) ? mine : undefined;
      }, 60_000, 250);
      const leaderView = await jsm.streams.info(name);
      expect([name, caughtUp]).toEqual([name, { messages: leaderView.state.messages, lastSeq: leaderView.state.last_seq }]);
    }
    // Seen from the returned node alone, the cluster counts it in again: leader or a current replica.
    const onlyVictim = await connect({ servers: cluster.nodes[victim].url });
    try {
      const info = await (await jetstreamManager(onlyVictim)).streams.info(s.runsStream);
      const name = cluster.nodes[victim].name;
      expect(info.cluster?.leader === name || info.cluster?.replicas?.some((r) => r.name === name && r.current)).toBe(true);
    } finally {
      await onlyVictim.close();
    }
    expect(await storedState(sys.api.baseUrl)).toEqual(stored);
  });

  /** Steps the test drivers finished (journal lines `<run> <step> <attempt> <agent> done`). */
  function doneSteps(ids: string[]): number {
    return ids.reduce((n, id) => n + sys.journalOf(id).filter((j) => j.what === 'done').length, 0);
  }
});

/** GET that retries while the gateway answers 503 (NATS did not answer), bounded; any other non-200 fails. */
async function getRetrying503(url: string): Promise<unknown> {
  return waitFor(`GET ${url} to answer`, async () => {
    const res = await fetch(url);
    if (res.status === 503) return undefined;
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
    return res.json();
  }, 90_000, 200);
}

function same(a: { messages: number; lastSeq: number }, b: { messages: number; lastSeq: number }): boolean {
  return a.messages === b.messages && a.lastSeq === b.lastSeq;
}
