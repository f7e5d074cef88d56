import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { newRunId } from '@conveyor/contracts';
import { Test } from '@nestjs/testing';
import { BuildContainers, DockerModule, LABELS } from '@conveyor/docker';
import { Workspaces } from '@conveyor/workspace';
import { BUILD_IMAGE, TEST_LABELS, ensureBuildImage, ensureDockerEngine, removeTestContainers, testBuildContainers } from '../support/docker';
import { waitFor } from '../support/processes';

jest.setTimeout(60_000);

/** Collects an exec's output per stream and in arrival order. */
function outputRecorder() {
  const chunks: { stream: 'stdout' | 'stderr'; text: string }[] = [];
  return {
    chunks,
    onOutput: (stream: 'stdout' | 'stderr', chunk: Buffer) => void chunks.push({ stream, text: chunk.toString('utf8') }),
    text: (stream: 'stdout' | 'stderr') => chunks.filter((c) => c.stream === stream).map((c) => c.text).join(''),
  };
}

function recordingLog() {
  const lines: string[] = [];
  return { lines, info: (l: string) => lines.push(`info ${l}`), warn: (l: string) => lines.push(`warn ${l}`) };
}

describe('BuildContainers (real Docker)', () => {
  const docker = new Docker();
  let containers: BuildContainers;
  let workspaces: Workspaces;
  let wsRoot: string;
  const agent = { agent: 'test-agent-1', machine: 'test-machine' };

  beforeAll(async () => {
    await ensureDockerEngine();
    ensureBuildImage();
    containers = testBuildContainers(docker);
    wsRoot = mkdtempSync(join(tmpdir(), 'conveyor-ws-'));
    workspaces = new Workspaces(join(wsRoot, 'workspaces'));
  });
  afterEach(async () => {
    await removeTestContainers(docker);
  });
  afterAll(() => {
    rmSync(wsRoot, { recursive: true, force: true });
  });

  async function startRun(env: { name: string; value: string }[] = []) {
    const runId = newRunId();
    const workspaceDir = await workspaces.ensure(runId);
    const started = await containers.start({ runId, env, workspaceDir, ...agent, labels: TEST_LABELS });
    return { runId, workspaceDir, ...started };
  }

  it('has the build image, built locally by deploy/image/build.sh', async () => {
    const info = await docker.getImage(BUILD_IMAGE).inspect();
    expect(info.Config.WorkingDir).toBe('/workspace');
    expect(info.Config.Labels?.['conveyor.image']).toBe('build');
  });

  it('starts one container per run and reuses it on a second start, also when it was stopped', async () => {
    const { runId, workspaceDir, containerId, name, reused } = await startRun();
    expect(reused).toBe(false);
    expect(name).toBe(`conveyor-${runId}-test-machine`);
    const log = recordingLog();
    const again = await containers.start({ runId, workspaceDir, ...agent, labels: TEST_LABELS, log });
    expect(again).toMatchObject({ containerId, name, reused: true });
    expect(log.lines.some((l) => l.includes('reusing'))).toBe(true);

    const info = await docker.getContainer(containerId).inspect();
    expect(info.State.Running).toBe(true);
    expect(info.Config.Labels).toMatchObject({ [LABELS.run]: runId, [LABELS.agent]: 'test-agent-1', [LABELS.machine]: 'test-machine', [LABELS.managed]: 'true', 'conveyor.test': 'true' });
    expect(info.HostConfig).toMatchObject({ NetworkMode: 'none', Privileged: false, CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], PidsLimit: 128, Memory: 256 * 1024 ** 2 });

    await docker.getContainer(containerId).stop({ t: 0 });
    const restarted = await containers.start({ runId, workspaceDir, ...agent, labels: TEST_LABELS });
    expect(restarted).toMatchObject({ containerId, reused: true });
    expect((await docker.getContainer(containerId).inspect()).State.Running).toBe(true);
  });

  it('with a read-only root, a build writes only to /workspace and a bounded /tmp', async () => {
    const readOnly = testBuildContainers(docker, { readOnlyRoot: true, tmpBytes: 8 * 1024 ** 2 });
    const runId = newRunId();
    const workspaceDir = await workspaces.ensure(runId);
    const { containerId } = await readOnly.start({ runId, workspaceDir, ...agent, labels: TEST_LABELS });
    const info = await docker.getContainer(containerId).inspect();
    expect(info.HostConfig).toMatchObject({ ReadonlyRootfs: true, Tmpfs: { '/tmp': expect.stringContaining('size=8388608') } });
    const run = async (command: string, user?: string) => {
      const out = outputRecorder();
      const { exitCode } = await readOnly.exec(containerId, command, { user, onOutput: out.onOutput });
      return { exitCode, stderr: out.text('stderr') };
    };
    expect(await run('echo x > /x')).toMatchObject({ exitCode: 1, stderr: expect.stringMatching(/Read-only file system/) });
    expect(await run('echo x > /etc/passwd')).toMatchObject({ exitCode: 1 });
    expect(await run('echo x > /workspace/out && echo y > /tmp/y && cat /tmp/y')).toMatchObject({ exitCode: 0 });
    expect(await run('echo z > /tmp/z', 'build')).toMatchObject({ exitCode: 0 });
    // /tmp is bounded: 16 MiB do not fit in 8.
    expect((await run('dd if=/dev/zero of=/tmp/big bs=1048576 count=16')).stderr).toMatch(/No space left on device/);
    expect(readFileSync(join(workspaceDir, 'out'), 'utf8')).toBe('x\n');
  });

  it('two agents starting the same run at once end with one container', async () => {
    const runId = newRunId();
    const workspaceDir = await workspaces.ensure(runId);
    const results = await Promise.all(
      [1, 2, 3].map((i) => containers.start({ runId, workspaceDir, agent: `agent-${i}`, machine: 'test-machine', labels: TEST_LABELS })),
    );
    expect(new Set(results.map((r) => r.containerId)).size).toBe(1);
    expect(results.filter((r) => !r.reused).length).toBe(1);
    expect(await containers.listRunContainers({ [LABELS.run]: runId })).toHaveLength(1);
  });

  it('a run started under two machine ids of one engine gets a container of each, mounting its own workspace', async () => {
    const runId = newRunId();
    const other = new Workspaces(join(wsRoot, 'other-machine'));
    const here = await containers.start({ runId, workspaceDir: await workspaces.ensure(runId), ...agent, labels: TEST_LABELS });
    const there = await containers.start({ runId, workspaceDir: await other.ensure(runId), agent: 'agent-b', machine: 'other-machine', labels: TEST_LABELS });
    expect([here.name, there.name]).toEqual([`conveyor-${runId}-test-machine`, `conveyor-${runId}-other-machine`]);
    expect(there).toMatchObject({ reused: false });
    writeFileSync(join(other.workspaceFor(runId), 'which'), 'other\n');
    const out = outputRecorder();
    await containers.exec(there.name, 'cat /workspace/which', { onOutput: out.onOutput });
    expect(out.text('stdout')).toBe('other\n');
    expect((await containers.listRunContainers({ [LABELS.run]: runId })).map((c) => c.machine).sort()).toEqual(['other-machine', 'test-machine']);
  });

  it("passes the resource's environment to exec'd commands, and the exec's own", async () => {
    const { containerId } = await startRun([{ name: 'GREETING', value: 'hello "world" $HOME' }]);
    const out = outputRecorder();
    const result = await containers.exec(containerId, 'echo "$GREETING"; echo "$EXTRA"; pwd', { env: [{ name: 'EXTRA', value: 'per-exec' }], onOutput: out.onOutput });
    expect(result).toEqual({ exitCode: 0, aborted: false });
    expect(out.text('stdout')).toBe('hello "world" $HOME\nper-exec\n/workspace\n');
  });

  it('streams stdout and stderr in order and returns a non-zero exit code', async () => {
    const { containerId } = await startRun();
    const out = outputRecorder();
    const result = await containers.exec(containerId, 'echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo out3; exit 3', { onOutput: out.onOutput });
    expect(result).toEqual({ exitCode: 3, aborted: false });
    expect(out.text('stdout')).toBe('out1\nout2\nout3\n');
    expect(out.text('stderr')).toBe('err1\nerr2\n');
  });

  it('delivers output while the command still runs, and shares /workspace with the host both ways', async () => {
    const { containerId, workspaceDir } = await startRun();
    const out = outputRecorder();
    // The command waits (bounded) for a file that the test writes on the host only after it saw "ready".
    const command = 'echo ready; i=0; while [ ! -f /workspace/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; cat /workspace/go; echo from-container > /workspace/out.txt';
    const result = await containers.exec(containerId, command, {
      onOutput: (stream, chunk) => {
        out.onOutput(stream, chunk);
        if (chunk.toString().includes('ready')) writeFileSync(join(workspaceDir, 'go'), 'from-host\n');
      },
    });
    expect(result).toEqual({ exitCode: 0, aborted: false });
    expect(out.text('stdout')).toBe('ready\nfrom-host\n');
    expect(readFileSync(join(workspaceDir, 'out.txt'), 'utf8')).toBe('from-container\n');
  });

  it('holds a command whose output is not taken yet: the sink\'s promise pauses it, nothing is lost', async () => {
    const { containerId, workspaceDir } = await startRun();
    // Far more than the pipe and socket buffers between the command and this process hold.
    const lines = 1_000_000;
    let taken = 0;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let holding = true;
    const running = containers.exec(containerId, `seq 1 ${lines}; touch /workspace/printed`, {
      onOutput: (_stream, chunk) => {
        taken += chunk.toString().split('\n').length - 1;
        return holding ? held : undefined;
      },
    });
    // While the first chunk is not taken, the command cannot finish printing.
    await waitFor('the first output', async () => (taken > 0 ? true : undefined), 10_000, 20);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(existsSync(join(workspaceDir, 'printed'))).toBe(false);
    holding = false;
    release();
    expect(await running).toEqual({ exitCode: 0, aborted: false });
    expect(taken).toBe(lines);
    expect(existsSync(join(workspaceDir, 'printed'))).toBe(true);
  });

  it('kills a running command and everything it started when the signal fires', async () => {
    const { containerId } = await startRun();
    const controller = new AbortController();
    const out = outputRecorder();
    const result = await containers.exec(containerId, 'sleep 61 & echo started; sleep 60', {
      signal: controller.signal,
      onOutput: (stream, chunk) => {
        out.onOutput(stream, chunk);
        if (chunk.toString().includes('started')) controller.abort();
      },
    });
    expect(result.aborted).toBe(true);
    expect(out.text('stdout')).toBe('started\n');
    const ps = outputRecorder();
    await containers.exec(containerId, 'ps -o pid,args', { onOutput: ps.onOutput });
    expect(ps.text('stdout')).not.toMatch(/sleep 6[01]/);
    expect(ps.text('stdout')).toContain('sleep infinity');
  });

  it('kills a command of an unprivileged user too', async () => {
    const { containerId } = await startRun();
    const controller = new AbortController();
    const out = outputRecorder();
    const result = await containers.exec(containerId, 'id -u; sleep 60', {
      user: 'build',
      signal: controller.signal,
      onOutput: (stream, chunk) => {
        out.onOutput(stream, chunk);
        if (chunk.toString().includes('1000')) controller.abort();
      },
    });
    expect(result.aborted).toBe(true);
    expect(out.text('stdout')).toBe('1000\n');
    const ps = outputRecorder();
    await containers.exec(containerId, 'ps -o pid,args', { onOutput: ps.onOutput });
    expect(ps.text('stdout')).not.toContain('sleep 60');
  });

  it('does not run a command whose signal fired already', async () => {
    const { containerId, workspaceDir } = await startRun();
    const result = await containers.exec(containerId, 'touch /workspace/ran', { signal: AbortSignal.abort() });
    expect(result).toEqual({ exitCode: null, aborted: true });
    expect(existsSync(join(workspaceDir, 'ran'))).toBe(false);
  });

  it('stops and removes a container; a second removal is a no-op', async () => {
    const { runId, name } = await startRun();
    expect((await containers.listRunContainers({ [LABELS.run]: runId })).map((c) => c.name)).toEqual([name]);
    expect(await containers.stopAndRemove(name)).toEqual({ removed: true });
    expect(await containers.listRunContainers({ [LABELS.run]: runId })).toEqual([]);
    expect(await containers.stopAndRemove(name)).toEqual({ removed: false });
  });

  it('says which container it could not run a command in', async () => {
    await expect(containers.exec(`conveyor-${newRunId()}-test-machine`, 'true')).rejects.toThrow(/cannot run a command in container conveyor-\w+-test-machine: .*[Nn]o such container/);
  });

  it('refuses a malformed run id before Docker is asked', () => {
    expect(() => containers.containerName('../etc', 'test-machine')).toThrow(/malformed/);
    expect(() => containers.containerName(newRunId(), '../etc')).toThrow(/malformed/);
  });

  describe('a missing image', () => {
    it('fails at once with a clear error when pulling is off', async () => {
      await expect(containers.ensureImage('conveyor/does-not-exist:1')).rejects.toThrow(
        /image conveyor\/does-not-exist:1 is missing locally and could not be pulled: pulling is disabled .*docker load/,
      );
      const runId = newRunId();
      await expect(containers.start({ runId, image: 'conveyor/does-not-exist:1', workspaceDir: await workspaces.ensure(runId), ...agent, labels: TEST_LABELS })).rejects.toThrow(
        /missing locally/,
      );
      expect(await containers.listRunContainers({ [LABELS.run]: runId })).toEqual([]);
    });

    it('explains how to build the configured default image', async () => {
      const other = testBuildContainers(docker, { defaultImage: 'conveyor/build:no-such-tag' });
      await expect(other.ensureImage('conveyor/build:no-such-tag')).rejects.toThrow(/could not be pulled: .*; build it on this machine with deploy\/image\/build.sh --tag conveyor\/build:no-such-tag$/);
      await expect(containers.ensureImage(BUILD_IMAGE)).resolves.toBeUndefined();
    });

    describe('with pulling on, against registries on 127.0.0.1', () => {
      let hanging: Server;
      const sockets = new Set<Socket>();
      beforeAll(async () => {
        // Accepts connections and never answers: a registry that hangs.
        hanging = createServer((socket) => {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
        });
        await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
      });
      afterAll(async () => {
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => hanging.close(() => resolve()));
      });

      it('reports a registry that refuses connections', async () => {
        const closed = createServer();
        await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
        const port = (closed.address() as { port: number }).port;
        await new Promise<void>((resolve) => closed.close(() => resolve()));
        const pulling = testBuildContainers(docker, { pullPolicy: 'missing', pullTimeoutMs: 20_000 });
        const log = recordingLog();
        const attempt = pulling.ensureImage(`127.0.0.1:${port}/conveyor/nope:1`, log);
        await expect(attempt).rejects.toThrow(/is missing locally and could not be pulled: .*connection refused.*docker load -i FILE/);
        expect(log.lines.some((l) => l.includes('pulling it'))).toBe(true);
      });

      it('gives up on a registry that hangs after the pull timeout', async () => {
        const port = (hanging.address() as { port: number }).port;
        const pulling = testBuildContainers(docker, { pullPolicy: 'missing', pullTimeoutMs: 2_000 });
        await expect(pulling.ensureImage(`127.0.0.1:${port}/conveyor/nope:1`)).rejects.toThrow(/could not be pulled: the pull did not finish within 2 s/);
      });
    });
  });
});

describe('DockerModule', () => {
  it('provides BuildContainers configured from the environment', async () => {
    const saved = process.env.CONVEYOR_CONTAINER_PIDS;
    process.env.CONVEYOR_CONTAINER_PIDS = '77';
    try {
      const moduleRef = await Test.createTestingModule({ imports: [DockerModule] }).compile();
      const provided = moduleRef.get(BuildContainers);
      expect(provided.options.pidsLimit).toBe(77);
      expect(provided.containerName('0123456789abcdefghjkmnpqrs', 'rack-1')).toBe('conveyor-0123456789abcdefghjkmnpqrs-rack-1');
      await moduleRef.close();
    } finally {
      if (saved === undefined) delete process.env.CONVEYOR_CONTAINER_PIDS;
      else process.env.CONVEYOR_CONTAINER_PIDS = saved;
    }
  });
});
