import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import Docker from 'dockerode';
import { newRunId, type Run } from '@conveyor/contracts';
import { loadConfig } from '@conveyor/config';
import { Workspaces } from '@conveyor/workspace';
import { createGateway } from '../../apps/gateway/src/bootstrap';
import { Api } from '../support/api';
import { BuiltinDriverFleet, tutorialPipeline } from '../support/builtin-drivers';
import { ensureBuildImage, ensureDockerEngine, testBuildContainers } from '../support/docker';
import { makeTestRepository, type TestRepository } from '../support/git-repo';
import { NatsServer } from '../support/nats-server';
import { type AppProcess, startTestDriver, waitFor } from '../support/processes';

jest.setTimeout(180_000);

const GRACE_MS = 2_000;

/**
 * Two simulated build machines on one Docker engine (as machines.e2e-spec.ts has them), each
 * with its janitor in its container-start agents (CONVEYOR_JANITOR_GRACE=2s). A run's first
 * container-start attempt lands on machine a, makes its container and workspace there, and its
 * agent is SIGKILLed; the retry runs on machine b. Machine a's janitor removes what the first
 * attempt left once the grace has passed; machine b's container goes with the run's cleanup.
 */
describe("the build machine's janitor", () => {
  const docker = new Docker();
  let nats: NatsServer;
  let gateway: INestApplication;
  let api: Api;
  let repo: TestRepository;
  const fleets: Record<'a' | 'b', BuiltinDriverFleet> = {} as never;
  const extra: AppProcess[] = [];
  const env = { CONVEYOR_HEARTBEAT_INTERVAL: '1s', CONVEYOR_JANITOR_GRACE: `${GRACE_MS}ms` };

  beforeAll(async () => {
    await ensureDockerEngine();
    ensureBuildImage();
    repo = makeTestRepository();
    nats = await NatsServer.start();
    gateway = await createGateway(loadConfig({ CONVEYOR_NATS_URL: nats.url, CONVEYOR_HTTP_PORT: '0', CONVEYOR_HEARTBEAT_INTERVAL: '1s' }), { logger: ['error'] });
    await gateway.listen(0, '127.0.0.1');
    api = new Api((await gateway.getUrl()).replace('[::1]', '127.0.0.1'));
    for (const m of ['a', 'b'] as const) fleets[m] = new BuiltinDriverFleet(nats.url, { ...env, CONVEYOR_MACHINE_ID: `machine-${m}` });
    await api.ok('POST', '/resource-definitions', { name: 'app', schema: { type: 'object' } });
    const pipeline = tutorialPipeline('build', 'app') as { steps: Array<Record<string, unknown>> };
    // A test driver playing machine a's container-start holds its attempt (the real driver ignores the key).
    pipeline.steps[0].config = { sleepMs: 120_000 };
    await api.ok('POST', '/pipelines', pipeline);
  });

  afterAll(async () => {
    await Promise.all(extra.map((p) => p.stop('SIGKILL')));
    const left = (await Promise.all(Object.values(fleets).map((f) => f?.stop()))).reduce((a, b) => (a ?? 0) + (b ?? 0), 0);
    await gateway?.close();
    await nats?.dispose();
    repo?.dispose();
    expect(left).toBe(0);
  });

  const runOf = (id: string) => api.ok<Run>('GET', `/runs/${id}`);
  const startOf = (run: Run) => run.steps.find((s) => s.id === 'start')!;
  const exists = async (name: string) => docker.getContainer(name).inspect().then(() => true, () => false);

  it("removes what a killed agent left on machine a once its run moved to machine b, and what runs that ended or vanished left; never a live run's", async () => {
    // Machine b, without its container-start for now: the first attempt must land on machine a.
    await Promise.all((['git-cloner', 'builder', 'container-stop'] as const).map((d) => fleets.b.start(d)));
    const fakeStart = await startTestDriver(['container-start'], { ...fleets.a.env('machine-a-container-start-0'), TEST_DRIVERS: 'container-start' });
    extra.push(fakeStart);

    // The build outlasts the grace: machine b's janitor sweeps the whole time and must leave it alone.
    const { runid: id } = await api.ok<{ runid: string }>('POST', '/resources', {
      name: 'app-1',
      resource: 'app',
      pipeline: 'build',
      spec: { repository: repo.url, commands: ['sleep 4', 'cat version.txt'] },
    });
    await waitFor('the first attempt on machine a', async () => {
      const s = startOf(await runOf(id));
      return s.status === 'running' && s.machine === 'machine-a' ? true : undefined;
    }, 30_000, 100);

    // What that attempt makes on machine a, made as container-start makes it there; then its agent dies.
    const onA = testBuildContainers(docker);
    const workspacesA = new Workspaces(fleets.a.workspaceRoot);
    const leftover = await onA.start({
      runId: id,
      workspaceDir: await workspacesA.ensure(id),
      agent: 'machine-a-container-start-0',
      machine: 'machine-a',
      labels: fleets.a.labels,
    });
    expect(leftover.name).toBe(fleets.a.containerName(id));
    await fakeStart.stop('SIGKILL');

    // The redelivered step (after the 3 s ack wait) runs on machine b.
    await fleets.b.start('container-start');
    await waitFor('the retry on machine b', async () => {
      const s = startOf(await runOf(id));
      return s.machine === 'machine-b' && s.attempts === 2 ? true : undefined;
    }, 30_000, 100);

    // Leftovers of a run that never existed here, and (below) of one that ended.
    const ghost = newRunId();
    const ghostContainer = await onA.start({ runId: ghost, workspaceDir: await workspacesA.ensure(ghost), agent: 'machine-a-container-start-0', machine: 'machine-a', labels: fleets.a.labels });

    // Machine a's container-start agent comes back (its supervisor restarts it): its janitor sweeps at start-up.
    const startedAt = Date.now();
    const restarted = await fleets.a.start('container-start');
    // Seen at start-up, but the grace has not passed: still there.
    await new Promise((r) => setTimeout(r, 300));
    expect(await exists(leftover.name)).toBe(true);
    await waitFor("machine a's janitor to remove the first attempt's container and workspace", async () =>
      !(await exists(leftover.name)) && !existsSync(join(fleets.a.workspaceRoot, id)) ? true : undefined, 15_000, 100);
    const removedAfter = Date.now() - startedAt;
    expect(removedAfter).toBeGreaterThanOrEqual(GRACE_MS);
    expect(removedAfter).toBeLessThan(GRACE_MS + 8_000);
    expect(restarted.logs).toContain(`removed container ${leftover.name} and workspace ${join(fleets.a.workspaceRoot, id)} of run ${id}: the run is live on machine machine-b`);
    await waitFor('the vanished run\'s leftovers to go', async () => (!(await exists(ghostContainer.name)) && !existsSync(join(fleets.a.workspaceRoot, ghost)) ? true : undefined), 15_000, 100);
    expect(restarted.logs).toContain(`of run ${ghost}: the run no longer exists`);

    // The run itself: built on machine b (its container survived machine b's janitor), cleaned up by container-stop.
    const run = await waitFor(`run ${id} to end`, async () => {
      const r = await runOf(id);
      return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined;
    }, 90_000, 200);
    expect(run.status).toBe('succeeded');
    expect(run.steps.map((s) => [s.id, s.status, s.machine])).toEqual([
      ['start', 'succeeded', 'machine-b'],
      ['clone', 'succeeded', 'machine-b'],
      ['build', 'succeeded', 'machine-b'],
      ['stop', 'succeeded', 'machine-b'],
    ]);
    expect(run.steps[3].data).toEqual({ containerName: fleets.b.containerName(id), removed: true });
    expect(await fleets.b.containers()).toHaveLength(0);
    expect(fleets.b.workspaces()).toEqual([]);
    for (const p of fleets.b.processes) expect(p.logs).not.toContain(`of run ${id}:`);

    // A leftover of the run, now ended, on machine a: removed a grace after the run's end.
    const late = await onA.start({ runId: id, workspaceDir: await workspacesA.ensure(id), agent: 'machine-a-container-start-0', machine: 'machine-a', labels: fleets.a.labels });
    await waitFor('the ended run\'s leftovers to go', async () => (!(await exists(late.name)) && !existsSync(join(fleets.a.workspaceRoot, id)) ? true : undefined), 15_000, 100);
    expect(restarted.logs).toContain(`of run ${id}: the run ended (succeeded at ${run.finishedAt})`);
    expect(await fleets.a.containers()).toHaveLength(0);
    expect(fleets.a.workspaces()).toEqual([]);
  });
});
