import type Docker from 'dockerode';
import { type BuiltinDriverFleet, buildOutput, runLogs } from '../support/builtin-drivers';
import { BuildSystem, stepOf } from '../support/build-system';
import { expectCleanedUp } from './build-expectations';
import type { TestRepository } from '../support/git-repo';
import { waitFor } from '../support/processes';
import type { TestSystem } from '../support/system';

jest.setTimeout(120_000);

/**
 * Issue 4: the tutorial's pipeline when a build is interrupted — cancelled, timed out, or its
 * driver killed — on real Docker with the driver apps as real processes. Every interruption
 * must still end the run and leave no container and no workspace behind.
 */
describe('the built-in build pipeline, interrupted', () => {
  let build: BuildSystem;
  let sys: TestSystem;
  let fleet: BuiltinDriverFleet;
  let repo: TestRepository;
  let docker: Docker;

  beforeAll(async () => {
    build = await BuildSystem.start();
    ({ sys, fleet, repo, docker } = build);
  });
  afterAll(async () => {
    expect(await build?.stop()).toBe(0);
  });

  /** Waits (bounded) until the build printed `line`: the command is running in the container. */
  function waitForOutput(runId: string, line: string): Promise<true> {
    return waitFor(`"${line}" in the build output of ${runId}`, async () => ((await buildOutput(sys.api, runId)).includes(line) ? true : undefined), 30_000, 100);
  }

  /** Processes of the container (`docker top`), or [] once the container is gone. */
  async function containerProcesses(runId: string): Promise<string[]> {
    try {
      const top = await docker.getContainer(fleet.containerName(runId)).top();
      return (top.Processes ?? []).map((p: string[]) => p.join(' '));
    } catch {
      return [];
    }
  }

  it('cancels a long build: the command is killed, the run is cancelled, container and workspace are removed', async () => {
    const id = await build.startBuild({ repository: repo.url, commands: ['echo started', 'sleep 300', 'echo never'] });
    await waitForOutput(id, 'started');
    await waitFor('sleep 300 to run in the container', async () => ((await containerProcesses(id)).some((p) => p.includes('sleep 300')) ? true : undefined), 10_000, 100);

    const res = await sys.api.request('POST', `/runs/${id}/cancel`);
    expect(res.status).toBeLessThan(300);
    // Bounded well below the 300 s of the command: only a killed command ends the step this soon.
    const run = await sys.waitForRun(id, ['succeeded', 'failed', 'cancelled'], 30_000);
    expect(run.status).toBe('cancelled');
    expect(stepOf(run, 'build').status).toBe('cancelled');
    expect(await buildOutput(sys.api, id)).toEqual(['started']);
    await expectCleanedUp(build, run);
  });

  it('times out a build step: the command is killed, the run fails with the timeout, cleanup runs', async () => {
    const id = await build.startBuild({ repository: repo.url, commands: ['echo waiting', 'sleep 60', 'echo never'] }, { timeout: 2 });
    const run = await sys.waitForRun(id, ['succeeded', 'failed', 'cancelled'], 30_000);
    expect(run.status).toBe('failed');
    expect(stepOf(run, 'build')).toMatchObject({ status: 'failed', message: 'timed out after 2s' });
    expect(await buildOutput(sys.api, id)).toEqual(['waiting']);
    await expectCleanedUp(build, run);
  });

  it('survives a builder killed with SIGKILL mid-build: another copy takes the step over and the run ends cleanly', async () => {
    await fleet.start('builder');
    const id = await build.startBuild({ repository: repo.url, commands: ['echo begin', 'sleep 5', 'echo end'] });
    await waitForOutput(id, 'begin');
    const running = await waitFor('the build step to have an agent', async () => {
      const s = stepOf(await sys.api.run(id), 'build');
      return s.status === 'running' && s.agent ? s.agent : undefined;
    }, 10_000, 100);
    const victim = fleet.byAgent(running)!;
    expect(victim).toBeDefined();
    await victim.stop('SIGKILL');
    expect(victim.alive).toBe(false);

    // The message is redelivered once its ack wait (3 s) passes without heartbeats.
    const run = await sys.waitForRun(id, ['succeeded', 'failed', 'cancelled'], 60_000);
    expect(run.status).toBe('succeeded');
    const built = stepOf(run, 'build');
    expect(built).toMatchObject({ status: 'succeeded', attempts: 2, message: '3 commands succeeded' });
    expect(built.agent).not.toBe(running);
    // The copy that was not killed: the one started here or the suite's first builder.
    expect(fleet.byAgent(built.agent!)?.alive).toBe(true);
    const attempt2 = (await runLogs(sys.api, id, 'builder')).filter((l) => l.attempt === 2 && l.stream !== 'system').map((l) => l.line);
    expect(attempt2).toEqual(['begin', 'end']);
    await expectCleanedUp(build, run);
  });

  it('leaves no container and no workspace of the suite behind', async () => {
    expect(await fleet.containers(docker)).toEqual([]);
    expect(fleet.workspaces()).toEqual([]);
  });
});
