import { execFileSync, spawn } from 'node:child_process';
import { openSync } from 'node:fs';
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
