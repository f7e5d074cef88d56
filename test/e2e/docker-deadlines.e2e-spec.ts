import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { newRunId, type Run } from '@conveyor/contracts';
import { type BuildContainers } from '@conveyor/docker';
import { Workspaces } from '@conveyor/workspace';
import { BuildSystem, stepOf } from '../support/build-system';
import { buildOutput, runLogs } from '../support/builtin-drivers';
import {
  type FrozenDockerd,
  TEST_LABELS,
  ensureBuildImage,
  ensureDockerEngine,
  freezeDockerd,
  processState,
  removeTestContainers,
  testBuildContainers,
} from '../support/docker';
import { waitFor } from '../support/processes';

jest.setTimeout(120_000);

/** The engine deadline of these tests: the real dockerd is frozen for a few seconds at most. */
const DEADLINE_MS = 2_000;

/**
 * How long `promise` took to settle, and how (its value or its error), counted from `t0`: the
 * moment before the call that made it (the call's own deadline starts inside it).
 */
async function timed<T>(promise: Promise<T>, t0 = Date.now()): Promise<{ ms: number; value?: T; error?: Error }> {
  try {
    const value = await promise;
    return { ms: Date.now() - t0, value };
  } catch (error) {
    return { ms: Date.now() - t0, error: error as Error };
  }
}

/**
 * CONVEYOR_DOCKER_TIMEOUT against a real hung engine: the real dockerd is stopped with
 * SIGSTOP (every API call then waits, as on a hung engine, while containers run on under
 * containerd) and continued with SIGCONT in a finally block, and again after all.
 */
describe('Docker deadlines (the real dockerd, frozen)', () => {
  const docker = new Docker();
  let containers: BuildContainers;
  let workspaces: Workspaces;
  let wsRoot: string;
  let frozen: FrozenDockerd | undefined;
  const agent = { agent: 'deadline-agent', machine: 'deadline-machine' };

  const freeze = () => (frozen = freezeDockerd());
  const thaw = () => frozen?.thaw();

  beforeAll(async () => {
    await ensureDockerEngine();
    ensureBuildImage();
    containers = testBuildContainers(docker, { dockerTimeoutMs: DEADLINE_MS });
    wsRoot = mkdtempSync(join(tmpdir(), 'conveyor-ws-'));
    workspaces = new Workspaces(join(wsRoot, 'workspaces'));
  });
  afterEach(async () => {
    thaw();
    await removeTestContainers(docker);
  });
  afterAll(() => {
    thaw();
    rmSync(wsRoot, { recursive: true, force: true });
  });

  async function startRun() {
    const runId = newRunId();
    const workspaceDir = await workspaces.ensure(runId);
    return { runId, workspaceDir, ...(await containers.start({ runId, workspaceDir, ...agent, labels: TEST_LABELS })) };
  }

  /** After SIGCONT: the engine answers, and a container goes through its whole life. */
  async function expectEngineWorks(): Promise<void> {
    expect(frozen && processState(frozen.pid)).not.toBe('T');
    expect(String(await docker.ping())).toBe('OK');
    const { name } = await startRun();
    const out: string[] = [];
    const result = await containers.exec(name, 'echo alive', { onOutput: (_s, chunk) => void out.push(chunk.toString()) });
    expect(result).toEqual({ exitCode: 0, aborted: false });
    expect(out.join('')).toBe('alive\n');
    expect(await containers.stopAndRemove(name)).toEqual({ removed: true });
  }

  it('every call fails within its deadline with a message naming it; the engine is fine once continued', async () => {
    const running = await startRun();
    const fresh = newRunId();
    const freshDir = await workspaces.ensure(fresh);
    freeze();
    let results: Record<string, { ms: number; error?: Error }>;
    try {
      expect(processState(frozen!.pid)).toBe('T');
      // Timed from before the first call is made: a clock started once they were all made
      // counted short by however long making them took (1669 ms for a 2 s deadline, seen in CI).
      const t0 = Date.now();
      const calls = {
        start: containers.start({ runId: fresh, workspaceDir: freshDir, ...agent, labels: TEST_LABELS }),
        exec: containers.exec(running.name, 'true'),
        image: containers.ensureImage('conveyor/build:latest'),
        list: containers.listRunContainers(),
        stop: containers.stopAndRemove(running.name),
        // container-stop's own deadline (the step's timeout) comes before the engine's.
        stopWithSignal: containers.stopAndRemove(running.name, { signal: AbortSignal.timeout(1_000) }),
      };
      results = Object.fromEntries(await Promise.all(Object.entries(calls).map(async ([k, p]) => [k, await timed(p as Promise<unknown>, t0)] as const)));
    } finally {
      thaw();
    }
    const within = (r: { ms: number }, ms: number) => {
      expect(r.ms).toBeGreaterThanOrEqual(ms - 50);
      expect(r.ms).toBeLessThan(ms + 1_000);
    };
    expect(results.start.error?.message).toBe(`the Docker engine did not answer within 2s (inspect container conveyor-${fresh}-deadline-machine)`);
    within(results.start, DEADLINE_MS);
    expect(results.exec.error?.message).toBe(`the Docker engine did not answer within 2s (create exec in container ${running.name})`);
    within(results.exec, DEADLINE_MS);
    expect(results.image.error?.message).toBe('the Docker engine did not answer within 2s (inspect image conveyor/build:latest)');
    within(results.image, DEADLINE_MS);
    expect(results.list.error?.message).toBe('the Docker engine did not answer within 2s (list containers)');
    within(results.list, DEADLINE_MS);
    // A stop waits for the container's stop grace (1 s here) on top of the engine deadline.
    expect(results.stop.error?.message).toBe(`the Docker engine did not answer within 3s (stop container ${running.name})`);
    within(results.stop, DEADLINE_MS + 1_000);
    expect(results.stopWithSignal.error?.message).toMatch(new RegExp(`^stopped waiting for the Docker engine \\(stop container ${running.name}\\): `));
    within(results.stopWithSignal, 1_000);

    await expectEngineWorks();
  });

  it("a running command's output has no engine deadline; the kill that ends it has one", async () => {
    const { name } = await startRun();
    const controller = new AbortController();
    const out: string[] = [];
    let started!: () => void;
    const isStarted = new Promise<void>((resolve) => (started = resolve));
    const exec = timed(
      containers.exec(name, 'echo started; sleep 60', {
        signal: controller.signal,
        onOutput: (_s, chunk) => {
          out.push(chunk.toString());
          if (out.join('').includes('started')) started();
        },
      }),
    );
    await isStarted;
    freeze();
    let settledEarly = false;
    let result: Awaited<typeof exec>;
    let sinceAbort: number;
    try {
      void exec.then(() => (settledEarly = true));
      // Longer than the engine deadline: a silent command is not a hung engine.
      await new Promise((r) => setTimeout(r, DEADLINE_MS + 300));
      expect(settledEarly).toBe(false);
      const abortedAt = Date.now();
      controller.abort(new Error('cancelled by the test'));
      result = await exec;
      sinceAbort = Date.now() - abortedAt;
    } finally {
      thaw();
    }
    // The kill's exec could not be created: the command is given up within the deadline.
    expect(result.value).toEqual({ exitCode: null, aborted: true });
    expect(sinceAbort).toBeLessThan(DEADLINE_MS + 1_000);
    expect(out.join('')).toBe('started\n');
    await expectEngineWorks();
  });
});

/**
 * The drivers as real processes with CONVEYOR_DOCKER_TIMEOUT=2s: a hung engine fails the step
 * that calls it with the deadline's message, and the run ends instead of hanging.
 */
describe('Docker deadlines in a run (driver processes, the real dockerd frozen)', () => {
  let build: BuildSystem;
  let frozen: FrozenDockerd | undefined;

  beforeAll(async () => {
    // A retry of container-stop comes 2 s after its failed attempt: time for the test to continue dockerd.
    build = await BuildSystem.start({ CONVEYOR_DOCKER_TIMEOUT: '2s', CONVEYOR_RETRY_BACKOFF: '2s' });
  });
  afterEach(() => frozen?.thaw());
  afterAll(async () => {
    frozen?.thaw();
    expect(await build?.stop()).toBe(0);
  });

  const waitForStep = (id: string, step: string, ok: (s: Run['steps'][number]) => boolean, timeoutMs = 15_000) =>
    waitFor(`step ${step} of run ${id}`, async () => {
      const run = await build.sys.api.run(id);
      return ok(stepOf(run, step)) ? run : undefined;
    }, timeoutMs, 50);

  it('container-start fails within the deadline naming the call; cleanup runs once the engine is back', async () => {
    frozen = freezeDockerd();
    let failedRun: Run;
    let id: string;
    try {
      id = await build.startBuild({ repository: build.repo.url, commands: ['true'] }, {}, { retries: 2 });
      failedRun = await waitForStep(id, 'start', (s) => s.status === 'failed');
    } finally {
      frozen.thaw();
    }
    const start = stepOf(failedRun, 'start');
    expect(start.message).toBe(`the Docker engine did not answer within 2s (inspect container ${build.fleet.containerName(id)})`);
    expect(start.durationMs).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
    expect(start.durationMs).toBeLessThan(DEADLINE_MS + 1_500);
    const run = await build.sys.waitForRun(id, ['failed', 'succeeded', 'cancelled'], 30_000);
    expect(run.status).toBe('failed');
    expect(stepOf(run, 'stop').status).toBe('succeeded');
    expect(existsSync(join(build.fleet.workspaceRoot, id))).toBe(false);
    expect(await build.fleet.containers()).toHaveLength(0);
  });

  it("a cancelled build's kill is bounded, and container-stop keeps its own timeout on a hung engine", async () => {
    const id = await build.startBuild({ repository: build.repo.url, commands: ['echo started; sleep 300'] }, {}, { timeout: 1, retries: 1 });
    await waitFor('the build to start', async () => ((await buildOutput(build.sys.api, id)).includes('started') ? true : undefined), 60_000, 100);
    frozen = freezeDockerd();
    let cancelledAt: number;
    let stopRetrying: Run;
    let seenAt: number;
    try {
      cancelledAt = Date.now();
      expect((await build.sys.api.request('POST', `/runs/${id}/cancel`)).status).toBe(202);
      // container-stop's first attempt meets the frozen engine and fails at its own 1 s timeout.
      stopRetrying = await waitForStep(id, 'stop', (s) => s.status === 'retrying' || s.status === 'failed');
      seenAt = Date.now();
    } finally {
      frozen.thaw();
    }
    const buildStep = stepOf(stopRetrying, 'build');
    expect(buildStep.status).toBe('cancelled');
    // The kill's exec was never created: the builder gave up at the engine deadline.
    expect(Date.parse(buildStep.finishedAt!) - cancelledAt).toBeLessThan(DEADLINE_MS + 1_500);
    const firstStop = stepOf(stopRetrying, 'stop');
    expect(firstStop).toMatchObject({ status: 'retrying', message: 'timed out after 1s' });
    // Given up at its 1 s, not after the 3 s the engine deadline gives a stop (2 s + its 1 s grace).
    expect(seenAt - Date.parse(firstStop.startedAt!)).toBeLessThan(2_500);

    const run = await build.sys.waitForRun(id, ['failed', 'succeeded', 'cancelled'], 30_000);
    expect(run.status).toBe('cancelled');
    expect(stepOf(run, 'stop')).toMatchObject({ status: 'succeeded', attempts: 2 });
    const stopLogs = (await runLogs(build.sys.api, id, 'container-stop')).map((l) => l.line);
    expect(stopLogs.some((l) => l.includes('attempt 1 failed: timed out after 1s'))).toBe(true);
    expect(existsSync(join(build.fleet.workspaceRoot, id))).toBe(false);
    expect(await build.fleet.containers()).toHaveLength(0);
  });
});
