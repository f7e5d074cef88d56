import type { AgentInfo } from '@conveyor/contracts';
import { TestSystem } from '../support/system';
import { waitFor } from '../support/processes';

jest.setTimeout(120_000);

describe('driver agents', () => {
  let sys: TestSystem;

  beforeAll(async () => {
    sys = await TestSystem.start();
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const agents = () => sys.api.ok<AgentInfo[]>('GET', '/drivers');

  it('lists live agents with their drivers, machine and running steps; a killed one drops off', async () => {
    const a = await sys.startDriver(['lister', 'other'], { CONVEYOR_MACHINE_ID: 'machine-a' });
    await sys.startDriver(['lister'], { CONVEYOR_MACHINE_ID: 'machine-b' });
    const listed = await waitFor('two agents', async () => {
      const list = await agents();
      return list.length === 2 ? list : undefined;
    });
    expect(listed.map((x) => [x.machine, x.drivers])).toEqual([['machine-a', ['lister', 'other']], ['machine-b', ['lister']]]);
    expect((await sys.api.ok<AgentInfo[]>('GET', '/drivers?driver=other')).map((x) => x.machine)).toEqual(['machine-a']);
    expect((await sys.api.request('GET', '/drivers?machine=a.b')).status).toBe(400);

    const id = await sys.run([{ driver: 'other', config: { sleepMs: 4_000 } }]);
    const busy = await waitFor('the running step in a heartbeat', async () => (await agents()).find((x) => x.running.some((r) => r.runId === id)));
    expect(busy.running[0]).toMatchObject({ runId: id, stepId: 's1', driver: 'other' });
    expect((await sys.waitForRun(id)).status).toBe('succeeded');

    await a.stop('SIGKILL');
    const left = await waitFor('the killed agent to drop off', async () => {
      const list = await agents();
      return list.length === 1 ? list : undefined;
    }, 15_000, 200);
    expect(left[0].machine).toBe('machine-b');
  });

  it('SIGTERM drains: the step in flight finishes, the agent exits 0 and leaves the list, nothing is lost', async () => {
    const agent = await sys.startDriver(['drainer']);
    const id = await sys.run([{ driver: 'drainer', config: { sleepMs: 2_000 } }, { driver: 'drainer' }]);
    await waitFor('the step to start', () => sys.journalOf(id).find((j) => j.what === 'start'));
    const code = await agent.stop('SIGTERM');
    expect(code).toBe(0);
    // The first step finished on this agent before it exited; the second waits for a new one.
    expect(sys.journalOf(id).filter((j) => j.what === 'done').map((j) => j.step)).toEqual(['s1']);
    expect(agent.agentId).toMatch(/^agent-/);
    expect((await agents()).some((x) => x.id === agent.agentId)).toBe(false);
    await sys.startDriver(['drainer']);
    const run = await sys.waitForRun(id);
    expect(run.status).toBe('succeeded');
    expect(run.steps.map((s) => s.attempts)).toEqual([1, 1]);
  });

  it('an idle agent exits at once on SIGTERM: its waiting pulls (30 s long) are drained, not waited out, and hold no work', async () => {
    // Three agents, each pulling on a 30 s grid of its own phase: left to expire, their pulls
    // would keep all three up for more than 10 s in all but 3% of tries.
    const idle = await Promise.all([1, 2, 3].map(() => sys.startDriver(['idler'])));
    await waitFor('the agents listed', async () => ((await agents()).filter((x) => x.drivers.includes('idler')).length === 3 ? true : undefined));
    const took = await Promise.all(
      idle.map(async (agent) => {
        const signalled = Date.now();
        expect(await agent.stop('SIGTERM')).toBe(0);
        return Date.now() - signalled;
      }),
    );
    expect(Math.max(...took)).toBeLessThan(10_000);
    // Work that comes after goes to the next agent at once: no pull of the gone one took it
    // (it would come back only after the 30 s ack wait).
    const id = await sys.run([{ driver: 'idler' }]);
    await sys.startDriver(['idler']);
    const run = await sys.waitForRun(id, undefined, 20_000);
    expect(run.status).toBe('succeeded');
    expect(run.steps[0].attempts).toBe(1);
  });

  it('an idle agent stopped while the nats-server does not answer (SIGSTOP) still exits: draining its pulls and its connection is bounded', async () => {
    const agent = await sys.startDriver(['stranded']);
    await waitFor('the agent listed', async () => (await agents()).find((x) => x.id === agent.agentId));
    const pid = sys.nats.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      // Not killed by stop()'s own bound (SIGKILL after 45 s: exit code null). A drain ends with
      // a flush, which waits for the server's answer: unbounded, it never came. What the agent
      // waits for now is bounded: its last heartbeats' 10 s timeouts, then 5 s per drain (about 28 s).
      expect(await agent.stop('SIGTERM', 45_000)).toBe(0);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });

  it('a draining agent says so in GET /drivers at once, while its step still runs', async () => {
    // Beats 2 s apart (the bucket keeps an entry 3 s), so a drain seen within 1 s of the signal, just after a beat, is not the next beat's.
    const agent = await sys.startDriver(['patient'], { CONVEYOR_HEARTBEAT_INTERVAL: '2s' });
    const id = await sys.run([{ driver: 'patient', config: { sleepMs: 5_000 } }]);
    await waitFor('the step to start', () => sys.journalOf(id).find((j) => j.what === 'start'));
    const seen = await waitFor('the running step in a heartbeat', async () => (await agents()).find((x) => x.id === agent.agentId && x.running.length > 0));
    expect(seen.draining).toBeUndefined();
    await waitFor('a fresh heartbeat', async () => ((await agents()).find((x) => x.id === agent.agentId)?.lastHeartbeat !== seen.lastHeartbeat ? true : undefined), 5_000, 20);
    const signalled = Date.now();
    agent.signal('SIGTERM');
    const draining = await waitFor('the agent to say it drains', async () => (await agents()).find((x) => x.id === agent.agentId && x.draining === true), 5_000, 20);
    expect(Date.now() - signalled).toBeLessThan(1_000);
    expect(draining.running).toEqual([expect.objectContaining({ runId: id, stepId: 's1', driver: 'patient' })]);
    expect(sys.journalOf(id).filter((j) => j.what === 'done')).toEqual([]);
    expect(await agent.exit()).toBe(0);
    expect((await agents()).some((x) => x.id === agent.agentId)).toBe(false);
    const run = await sys.waitForRun(id);
    expect(run.status).toBe('succeeded');
    expect(run.steps[0].agent).toBe(agent.agentId);
  });

  it('a step still running when the drain timeout ends goes back to the queue for another agent', async () => {
    const agent = await sys.startDriver(['slowpoke'], { CONVEYOR_DRAIN_TIMEOUT: '1s' });
    const id = await sys.run([{ driver: 'slowpoke', config: { sleepMs: 20_000, failTimes: 0 } }]);
    await waitFor('the step to start', () => sys.journalOf(id).find((j) => j.what === 'start'));
    expect(await agent.stop('SIGTERM')).toBe(0);
    await sys.startDriver(['slowpoke']);
    const starts = await waitFor('the step to start again elsewhere', () => {
      const s = sys.journalOf(id).filter((j) => j.what === 'start');
      return s.length === 2 ? s : undefined;
    }, 20_000);
    expect(starts[0].agent).not.toBe(starts[1].agent);
    await sys.api.request('POST', `/runs/${id}/cancel`);
    expect((await sys.waitForRun(id)).status).toBe('cancelled');
  });
});
