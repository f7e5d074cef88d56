import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { JsonObject, LogLine, PipelineStep } from '@conveyor/contracts';
import { loadConfig } from '@conveyor/config';
import { Api } from './api';
import { TEST_LABEL } from './docker';
import { AppProcess } from './processes';

/** The four built-in drivers, in the order of the tutorial's pipeline. */
export const BUILTIN_DRIVERS = ['container-start', 'git-cloner', 'builder', 'container-stop'] as const;
export type BuiltinDriver = (typeof BUILTIN_DRIVERS)[number];

/** A pipeline definition of the tutorial's shape; options (timeout, retries, config) go on the build and stop steps. */
export function tutorialPipeline(name: string, resource: string, build: Partial<PipelineStep> = {}, stop: Partial<PipelineStep> = {}): JsonObject {
  return {
    name,
    description: 'start a build container, clone, build, stop the container',
    resource,
    steps: [
      { id: 'start', name: 'Start Build Environment', driver: 'container-start' },
      { id: 'clone', name: 'Clone Git Repository', driver: 'git-cloner' },
      { id: 'build', name: 'Build', driver: 'builder', ...build },
      { id: 'stop', name: 'Stop Build Environment', driver: 'container-stop', always: true, ...stop },
    ],
  };
}

/**
 * The built-in driver apps, compiled (dist/apps/<driver>/src/main.js), as real processes, set up
 * the way tests need them: no container network, never pulling, a workspace root of their own,
 * and a label per fleet on every container so that leftovers are found.
 */
export class BuiltinDriverFleet {
  readonly processes: AppProcess[] = [];
  readonly workspaceRoot: string;
  /** Every container of this fleet carries this label value under TEST_LABEL-suite. */
  readonly suite: string;
  private seq = 0;

  constructor(
    private readonly natsUrl: string,
    private readonly extraEnv: Record<string, string> = {},
  ) {
    this.workspaceRoot = mkdtempSync(join(tmpdir(), 'conveyor-workspaces-'));
    this.suite = `s${process.pid}-${Date.now().toString(36)}`;
  }

  /** The build machine of this fleet's agents: CONVEYOR_MACHINE_ID, else the host's name as the apps derive it. */
  get machine(): string {
    return loadConfig({ CONVEYOR_MACHINE_ID: this.extraEnv.CONVEYOR_MACHINE_ID }).agent.machine;
  }

  /** The name container-start gives a run's container on this fleet's machine. */
  containerName(runId: string): string {
    return `conveyor-${runId}-${this.machine}`;
  }

  /** Container labels: conveyor.test=true (what test/run.sh looks for) and this fleet's suite. */
  get labels(): Record<string, string> {
    return { [TEST_LABEL]: 'true', [`${TEST_LABEL}-suite`]: this.suite };
  }

  env(agent: string): Record<string, string> {
    return {
      CONVEYOR_NATS_URL: this.natsUrl,
      CONVEYOR_AGENT_ID: agent,
      CONVEYOR_ACK_WAIT: '3s',
      CONVEYOR_RETRY_BACKOFF: '200ms',
      CONVEYOR_DRAIN_TIMEOUT: '10s',
      CONVEYOR_DOCKER_NETWORK: 'none',
      CONVEYOR_IMAGE_PULL: 'never',
      CONVEYOR_CONTAINER_MEMORY: '256m',
      CONVEYOR_CONTAINER_CPUS: '1',
      CONVEYOR_CONTAINER_PIDS: '128',
      CONVEYOR_CONTAINER_STOP_TIMEOUT: '1s',
      CONVEYOR_WORKSPACE_ROOT: this.workspaceRoot,
      CONVEYOR_CONTAINER_LABELS: Object.entries(this.labels).map(([k, v]) => `${k}=${v}`).join(','),
      ...this.extraEnv,
    };
  }

  /** Starts one copy of a driver; its agent id is `[<machine>-]<driver>-<n>`. */
  async start(driver: BuiltinDriver, env: Record<string, string> = {}): Promise<AppProcess> {
    // Agent ids are unique across fleets: a fleet may stand for a machine of its own.
    const machine = this.extraEnv.CONVEYOR_MACHINE_ID;
    const agent = `${machine ? `${machine}-` : ''}${driver}-${++this.seq}`;
    const p = await AppProcess.start(agent, `apps/${driver}/src/main.js`, { ...this.env(agent), ...env }, 'Nest microservice successfully started');
    this.processes.push(p);
    return p;
  }

  /** One copy of each of the four drivers. */
  async startAll(env: Record<string, string> = {}): Promise<void> {
    await Promise.all(BUILTIN_DRIVERS.map((d) => this.start(d, env)));
  }

  byAgent(agent: string): AppProcess | undefined {
    return this.processes.find((p) => p.name === agent);
  }

  /** Run folders still in the workspace root. */
  workspaces(): string[] {
    try {
      return readdirSync(this.workspaceRoot);
    } catch {
      return [];
    }
  }

  /** Containers of this fleet that still exist (any state). */
  async containers(docker: Docker = new Docker()): Promise<Docker.ContainerInfo[]> {
    return docker.listContainers({ all: true, filters: { label: Object.entries(this.labels).map(([k, v]) => `${k}=${v}`) } });
  }

  /** Kills the processes; force-removes this fleet's containers and returns how many there were. */
  async stop(docker: Docker = new Docker()): Promise<number> {
    await Promise.all(this.processes.map((p) => p.stop('SIGKILL')));
    const left = await this.containers(docker);
    await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
    rmSync(this.workspaceRoot, { recursive: true, force: true });
    return left.length;
  }
}

/** The run's log lines as `GET /logs?runid=` returns them, optionally of one driver. */
export async function runLogs(api: Api, runId: string, driver?: string): Promise<LogLine[]> {
  return api.ok<LogLine[]>('GET', `/logs?runid=${runId}${driver ? `&driver=${driver}` : ''}`);
}

/** The build's own output (stdout and stderr of the commands), in order. */
export async function buildOutput(api: Api, runId: string): Promise<string[]> {
  return (await runLogs(api, runId, 'builder')).filter((l) => l.stream !== 'system').map((l) => l.line);
}
