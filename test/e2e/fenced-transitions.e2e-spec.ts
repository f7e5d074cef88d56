import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { NatsServer } from '../support/nats-server';
import { waitFor } from '../support/processes';
import { TestSystem } from '../support/system';

jest.setTimeout(120_000);

/** A server that takes at most 256 KiB per message: small enough to outgrow on purpose. */
const SMALL_MESSAGES = 'max_payload: 262144\n';

/**
 * Every run transition is one record of the run's log, stored only if the log still ends
 * where its writer read it (libs/run-log). Each promise here is tested by causing its fault.
 */
describe('fenced run transitions', () => {
  let sys: TestSystem;

  beforeAll(async () => {
    sys = await TestSystem.on(await NatsServer.start({ config: SMALL_MESSAGES }), {}, { CONVEYOR_BODY_LIMIT: '1mb' });
    await sys.startDriver(['alpha', 'beta', 'cleanup']);
    await sys.startDriver(['alpha', 'beta', 'cleanup']);
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const starts = (id: string, step: string) => sys.journalOf(id).filter((j) => j.step === step && j.what === 'start');

  it('a hand-off that can never be stored (over max_payload) fails the run with the reason, and its cleanup runs', async () => {
    const id = await sys.run([{ driver: 'alpha', config: { outputBytes: 300_000 } }, { driver: 'beta' }, { driver: 'cleanup', always: true }]);
    const run = await sys.waitForRun(id, undefined, 30_000);
    expect(run.status).toBe('failed');
    expect(run.steps.map((s) => s.status)).toEqual(['failed', 'skipped', 'succeeded']);
    expect(run.steps[0].message).toMatch(/hand-off could not be stored: .*max_payload/);
    expect(run.message).toMatch(/max_payload/);
    expect(starts(id, 's1')).toHaveLength(1);
    expect(starts(id, 's2')).toHaveLength(0);
    expect(starts(id, 's3')).toHaveLength(1);
  });

  it('the gateway refuses (413) a resource whose first step message could not fit, and stores nothing', async () => {
    const pipeline = await sys.pipeline([{ driver: 'alpha' }]);
    const res = await fetch(`${sys.api.baseUrl}/resources`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'too-big', resource: 'thing', pipeline, spec: { blob: 'y'.repeat(300_000) } }),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { message: string }).message).toMatch(/max_payload/);
    expect((await fetch(`${sys.api.baseUrl}/resources/thing/too-big`)).status).toBe(404);
  });

  it('one owner per step attempt: an agent whose acks lapsed (SIGSTOP) cannot hand off a step another agent took over', async () => {
    const a = await sys.startDriver(['slow']);
    const id = await sys.run([{ driver: 'slow', config: { sleepMs: 4_000 } }, { driver: 'beta' }]);
    await waitFor('the step to start on the first agent', () => starts(id, 's1').find((j) => j.agent === a.agentId));
    // Its start recorded (the run record shows it), so the attempt counts when it is taken over.
    await waitFor('the first agent\'s start to be recorded', async () => {
      const s1 = (await sys.api.run(id)).steps[0];
      return s1.status === 'running' && s1.agent === a.agentId ? true : undefined;
    }, 20_000, 50);
    a.signal('SIGSTOP');
    // Its in-progress acks stop: after the ack wait (3 s) the step goes to another agent.
    const b = await sys.startDriver(['slow']);
    try {
      await waitFor('the second agent to take the step over', () => starts(id, 's1').find((j) => j.agent === b.agentId), 20_000);
    } finally {
      a.signal('SIGCONT');
    }
    const run = await sys.waitForRun(id);
    expect(run.status).toBe('succeeded');
    expect(run.steps[0]).toMatchObject({ attempts: 2, agent: b.agentId });
    expect(starts(id, 's2')).toHaveLength(1);
    // The first agent finished its handler too, and the server refused its hand-off.
    await waitFor('the first agent to be refused', () => (a.logs.includes('its hand-off was refused') ? true : undefined), 20_000);
    expect(sys.journalOf(id).filter((j) => j.step === 's1' && j.what === 'done').map((j) => j.agent).sort()).toEqual([a.agentId, b.agentId].sort());
    await a.stop('SIGKILL');
    await b.stop('SIGKILL');
  });

  it('every delivery is checked: a recreated consumer does not run kept work of ended runs again', async () => {
    const gamma = await sys.startDriver(['gamma']);
    const ids = await Promise.all([1, 2, 3].map(() => sys.run([{ driver: 'gamma' }])));
    for (const id of ids) expect((await sys.waitForRun(id)).status).toBe('succeeded');
    await gamma.stop('SIGKILL');
    const nc = await connect({ servers: sys.nats.url });
    try {
      // An operator deletes the consumer: its state (what was acked) is gone with it.
      await (await jetstreamManager(nc)).consumers.delete('CONVEYOR_RUNS', 'gamma');
    } finally {
      await nc.close();
    }
    const again = await sys.startDriver(['gamma']);
    await waitFor('the kept work to be delivered again and judged', () => ((again.logs.match(/not run: the run has ended/g)?.length ?? 0) >= 3 ? true : undefined), 20_000);
    for (const id of ids) expect(starts(id, 's1')).toHaveLength(1);
    await again.stop('SIGKILL');
  });

  it('attempts are attempts: steps given back by draining agents never use one up', async () => {
    const id = await sys.run([{ driver: 'drained', retries: 0, config: { sleepMs: 3_000 } }]);
    // Four agents in a row take the step and are stopped (SIGTERM) while it runs: each gives it back.
    for (let i = 0; i < 4; i++) {
      const agent = await sys.startDriver(['drained'], { CONVEYOR_CONCURRENCY: '4', CONVEYOR_DRAIN_TIMEOUT: '200ms' });
      await waitFor('the step to start', () => starts(id, 's1').find((j) => j.agent === agent.agentId), 20_000);
      await agent.stop('SIGTERM');
    }
    await sys.startDriver(['drained']);
    const run = await sys.waitForRun(id);
    expect(run.status).toBe('succeeded');
    expect(run.steps[0].attempts).toBe(1);
    expect(starts(id, 's1')).toHaveLength(5);
  });

  it('hard deadlines: a step past its timeout is recorded failed even when its handler ignores the abort', async () => {
    const id = await sys.run([{ driver: 'alpha', timeout: 1, config: { sleepMs: 60_000, ignoreAbort: true } }, { driver: 'cleanup', always: true }]);
    const run = await sys.waitForRun(id, undefined, 20_000);
    expect(run.status).toBe('failed');
    expect(run.steps[0].message).toMatch(/timed out after 1s/);
    expect(run.steps[1].status).toBe('succeeded');
  });

  it('no cross-machine clocks: an agent whose clock is 30 s behind is alive, and runs steps', async () => {
    const skewed = await sys.startDriver(['skewed'], {
      LD_PRELOAD: '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
      FAKETIME: '-30s',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    });
    // Over several heartbeats (1 s each; entries live three), it stays listed.
    for (let i = 0; i < 5; i++) {
      const agents = (await (await fetch(`${sys.api.baseUrl}/drivers?driver=skewed`)).json()) as Array<{ id: string; lastHeartbeat: string }>;
      expect(agents.map((x) => x.id)).toEqual([skewed.agentId]);
      // Its own clock really is behind.
      expect(Date.now() - Date.parse(agents[0].lastHeartbeat)).toBeGreaterThan(25_000);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    const id = await sys.run([{ driver: 'skewed' }]);
    expect((await sys.waitForRun(id)).status).toBe('succeeded');
    await skewed.stop('SIGKILL');
  });
});

describe('bounded resources', () => {
  it("a build machine's consumers are removed once no agent pulled from them for CONVEYOR_MACHINE_CONSUMER_TTL", async () => {
    const sys = await TestSystem.on(await NatsServer.start(), {}, { CONVEYOR_MACHINE_CONSUMER_TTL: '3s' });
    const nc = await connect({ servers: sys.nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      const names = async () => {
        const out: string[] = [];
        for await (const c of jsm.consumers.list('CONVEYOR_RUNS')) out.push(c.name);
        return out.sort();
      };
      const agent = await sys.startDriver(['omega'], { CONVEYOR_MACHINE_ID: 'rack-9' });
      // While its agent pulls, the machine's consumer stays.
      await new Promise((r) => setTimeout(r, 5_000));
      expect(await names()).toEqual(expect.arrayContaining(['omega', 'omega_rack-9']));
      await agent.stop('SIGKILL');
      await waitFor('the gone machine\'s consumer to be removed', async () => ((await names()).includes('omega_rack-9') ? undefined : true), 20_000, 250);
      expect(await names()).toContain('omega');
    } finally {
      await nc.close();
      await sys.stop();
    }
  });
});
