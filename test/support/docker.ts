import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { BuildContainers, buildContainerOptionsFromEnv, type BuildContainerOptions } from '@conveyor/docker';

export const TEST_LABEL = 'conveyor.test';
export const TEST_LABELS = { [TEST_LABEL]: 'true' };
export const BUILD_IMAGE = 'conveyor/build:latest';

function dockerInfoOk(): boolean {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes sure a Docker engine answers: starts `dockerd` (left running for later suites, its log
 * in /tmp/dockerd.log) when none does and this process may start it.
 */
export async function ensureDockerEngine(timeoutMs = 30_000): Promise<void> {
  if (dockerInfoOk()) return;
  if (process.getuid?.() !== 0) throw new Error('no Docker engine answers and only root can start dockerd: start it, then run the tests again');
  const out = openSync('/tmp/dockerd.log', 'a');
  spawn('dockerd', [], { detached: true, stdio: ['ignore', out, out] }).unref();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (dockerInfoOk()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`dockerd did not answer within ${timeoutMs} ms; see /tmp/dockerd.log`);
}

/** Builds conveyor/build:latest with deploy/image/build.sh when it is missing. */
export function ensureBuildImage(): void {
  execFileSync('bash', [join(__dirname, '..', '..', 'deploy', 'image', 'build.sh')], { stdio: 'pipe', timeout: 120_000 });
}

/**
 * conveyor/build-c:latest (gcc, make), built once per machine by deploy/image/build-c.sh (about a
 * minute). Not with execFileSync: a test's gateway runs in the test's process, and an event loop
 * blocked for longer than its HTTP keep-alive (5 s) hands the test's next request a pooled socket
 * the gateway closes at that moment (ECONNRESET, seen in CI when the image had to be built).
 */
export async function ensureCBuildImage(): Promise<void> {
  await promisify(execFile)('bash', [join(__dirname, '..', '..', 'deploy', 'image', 'build-c.sh')], { timeout: 600_000, maxBuffer: 64 * 1024 * 1024 });
}

/** BuildContainers as tests use it: no network, never pulling, quick stops. */
export function testBuildContainers(docker: Docker = new Docker(), overrides: Partial<BuildContainerOptions> = {}): BuildContainers {
  const options = buildContainerOptionsFromEnv({
    CONVEYOR_DOCKER_NETWORK: 'none',
    CONVEYOR_CONTAINER_MEMORY: '256m',
    CONVEYOR_CONTAINER_CPUS: '1',
    CONVEYOR_CONTAINER_PIDS: '128',
    CONVEYOR_IMAGE_PULL: 'never',
    CONVEYOR_CONTAINER_STOP_TIMEOUT: '1s',
  });
  return new BuildContainers(docker, { ...options, ...overrides });
}

/** Removes every container a test made (label conveyor.test=true); returns how many. */
export async function removeTestContainers(docker: Docker = new Docker()): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=true`] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
  return list.length;
}

/** The pid of the running dockerd: from its pid file, else from `pidof`; checked against /proc. */
export function dockerdPid(): number {
  const isDockerd = (pid: number) => {
    try {
      return pid > 0 && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'dockerd';
    } catch {
      return false;
    }
  };
  for (const file of ['/var/run/docker.pid', '/run/docker.pid']) {
    try {
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (isDockerd(pid)) return pid;
    } catch {
      // no pid file there
    }
  }
  const pids = execFileSync('pidof', ['dockerd'], { encoding: 'utf8' }).trim().split(/\s+/).map(Number).filter(isDockerd);
  if (pids.length !== 1) throw new Error(`expected one dockerd process, found ${pids.length}`);
  return pids[0];
}

export interface FrozenDockerd {
  pid: number;
  /** SIGCONT; safe to call more than once. */
  thaw(): void;
}

/**
 * Freezes the real dockerd with SIGSTOP, so that every Docker API call waits as it would on a
 * hung engine (the containers themselves keep running under containerd). Call `thaw` in a
 * finally block. Should this process die first, a detached watchdog sends SIGCONT after
 * `maxMs` anyway.
 */
export function freezeDockerd(maxMs = 20_000): FrozenDockerd {
  if (process.getuid?.() !== 0) throw new Error('only root may stop and continue dockerd: run the Docker deadline tests as root');
  const pid = dockerdPid();
  const watchdog = spawn('sh', ['-c', `sleep ${Math.ceil(maxMs / 1000)}; kill -CONT ${pid}`], { detached: true, stdio: 'ignore' });
  watchdog.unref();
  process.kill(pid, 'SIGSTOP');
  // A stop reaches a process running on another core a moment later: return once it shows as
  // stopped (bounded), so that callers see the engine frozen, not still on its way there.
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 1000 && processState(pid) !== 'T'; i++) Atomics.wait(pause, 0, 0, 1);
  let thawed = false;
  return {
    pid,
    thaw() {
      if (thawed) return;
      thawed = true;
      process.kill(pid, 'SIGCONT');
      // The watchdog is its own process group (detached): end the shell and its sleep.
      try {
        if (watchdog.pid) process.kill(-watchdog.pid, 'SIGKILL');
      } catch {
        // it ended already
      }
    },
  };
}

/** The state letter of a process (R, S, T for stopped, ...), from /proc. */
export function processState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}
