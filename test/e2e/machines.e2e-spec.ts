import type { INestApplication } from '@nestjs/common';
import type { Run } from '@conveyor/contracts';
import { loadConfig } from '@conveyor/config';
import { createGateway } from '../../apps/gateway/src/bootstrap';
import { Api } from '../support/api';
import { BUILTIN_DRIVERS, BuiltinDriverFleet, tutorialPipeline } from '../support/builtin-drivers';
import { ensureDockerEngine, ensureBuildImage } from '../support/docker';
import { makeTestRepository, type TestRepository } from '../support/git-repo';
import { NatsServer } from '../support/nats-server';
import { waitFor } from '../support/processes';

jest.setTimeout(240_000);

/**
 * Two simulated build machines on one Docker engine: two sets of the built-in drivers with
 * their own machine ids and workspace folders. The steps after container-start must run on
 * the machine that made the run's container.
 */
describe('build machines and container affinity', () => {
  let nats: NatsServer;
  let gateway: INestApplication;
  let api: Api;
  let repo: TestRepository;
  const fleets: Record<'a' | 'b', BuiltinDriverFleet> = {} as never;
  const env = { CONVEYOR_HEARTBEAT_INTERVAL: '1s', CONVEYOR_CONCURRENCY: '3', CONVEYOR_JANITOR_GRACE: '2s' };

  const startMachine = async (m: 'a' | 'b') => {
    // Two builders per machine, so one can die and its sibling take over.
    await Promise.all([...BUILTIN_DRIVERS, 'builder' as const].map((d) => fleets[m].start(d)));
  };

  beforeAll(async () => {
    await ensureDockerEngine();
    ensureBuildImage();
    repo = makeTestRepository();
    nats = await NatsServer.start();
    gateway = await createGateway(
      loadConfig({ CONVEYOR_NATS_URL: nats.url, CONVEYOR_HTTP_PORT: '0', CONVEYOR_MACHINE_GRACE: '6s', CONVEYOR_HEARTBEAT_INTERVAL: '1s' }),
      { logger: ['error'] },
    );
    await gateway.listen(0, '127.0.0.1');
    api = new Api((await gateway.getUrl()).replace('[::1]', '127.0.0.1'));
    for (const m of ['a', 'b'] as const) fleets[m] = new BuiltinDriverFleet(nats.url, { ...env, CONVEYOR_MACHINE_ID: `machine-${m}` });
    await Promise.all([startMachine('a'), startMachine('b')]);
    await api.ok('POST', '/resource-definitions', { name: 'app', schema: { type: 'object' } });
    await api.ok('POST', '/pipelines', tutorialPipeline('build', 'app'));
  });

  afterAll(async () => {
    const left = (await Promise.all(Object.values(fleets).map((f) => f?.stop()))).reduce((a, b) => (a ?? 0) + (b ?? 0), 0);
    await gateway?.close();
    await nats?.dispose();
    repo?.dispose();
    expect(left).toBe(0);
  });

  let seq = 0;
  const trigger = async (commands: string[]) =>
    (await api.ok<{ runid: string }>('POST', '/resources', { name: `app-${++seq}`, resource: 'app', pipeline: 'build', spec: { repository: repo.url, commands } })).runid;
  const finished = (id: string, timeoutMs = 120_000) =>
    waitFor(`run ${id} to end`, async () => {
      const r = await api.ok<Run>('GET', `/runs/${id}`);
      return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined;
    }, timeoutMs, 200);

  it('20 concurrent runs succeed, each one on a single machine, and both machines take work', async () => {
    // `cat version.txt` reads the clone through the container's mount: a clone made on the
    // other machine's workspace would not be there.
    const ids = await Promise.all(Array.from({ length: 20 }, () => trigger(['cat version.txt'])));
    const runs = await Promise.all(ids.map((id) => finished(id)));
    for (const run of runs) {
      expect(`${run.id} ${run.status}`).toBe(`${run.id} succeeded`);
      const machines = new Set(run.steps.map((s) => s.machine));
      expect([...machines]).toHaveLength(1);
    }
    const byMachine = new Set(runs.map((r) => r.steps[0].machine));
    expect([...byMachine].sort()).toEqual(['machine-a', 'machine-b']);
    expect(await fleets.a.containers()).toHaveLength(0);
    expect(await fleets.b.containers()).toHaveLength(0);
  });

  it("an agent killed mid-build: its machine's other builder finishes the step", async () => {
    const id = await trigger(['sleep 2', 'cat version.txt']);
    const building = await waitFor('the build to run', async () => {
      const r = await api.ok<Run>('GET', `/runs/${id}`);
      return r.steps[2].status === 'running' && r.steps[2].agent ? r : undefined;
    }, 60_000, 100);
    const machine = building.steps[0].machine as string;
    const fleet = machine === 'machine-a' ? fleets.a : fleets.b;
    await fleet.byAgent(building.steps[2].agent!)!.stop('SIGKILL');
    const run = await finished(id);
    expect(run.status).toBe('succeeded');
    expect(run.steps[2]).toMatchObject({ status: 'succeeded', attempts: 2, machine });
    expect(run.steps[2].agent).not.toBe(building.steps[2].agent);
    await fleet.start('builder');
  });

  it('a whole machine killed: its runs fail with a clear message within the grace period; its janitor removes what they left when it comes back', async () => {
    // Only machine b starts containers for this run.
    await Promise.all(fleets.a.processes.filter((p) => p.name.includes('container-start') && p.alive).map((p) => p.stop('SIGTERM')));
    const id = await trigger(['sleep 300']);
    await waitFor('the build to run on machine b', async () => {
      const r = await api.ok<Run>('GET', `/runs/${id}`);
      return r.steps[2].status === 'running' ? r : undefined;
    }, 60_000, 100);
    await Promise.all(fleets.b.processes.map((p) => p.stop('SIGKILL')));
    const run = await finished(id, 60_000);
    expect(run.status).toBe('failed');
    expect(run.message).toContain('no agent of build machine "machine-b"');
    expect(await fleets.b.containers()).toHaveLength(1); // only machine b can remove it
    await startMachine('b');
    // The run ended while b was gone, so b's agents do not run its cleanup step: b's janitor
    // removes the container and workspace of the ended run.
    await waitFor('machine b to clean up the run', async () => ((await fleets.b.containers()).length === 0 && fleets.b.workspaces().length === 0 ? true : undefined), 60_000, 250);
    expect((await api.ok<Run>('GET', `/runs/${id}`)).status).toBe('failed');
    await fleets.a.start('container-start');
  });
});
