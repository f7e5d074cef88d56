import { ConfigError, parseDuration } from '@conveyor/config';

/** How build containers are made; read from CONVEYOR_* variables by `buildContainerOptionsFromEnv`. */
export interface BuildContainerOptions {
  /** Docker network mode of build containers (`bridge` so builds can fetch dependencies; tests use `none`). */
  network: string;
  memoryBytes: number;
  nanoCpus: number;
  pidsLimit: number;
  defaultImage: string;
  /**
   * Capabilities added back after `CapDrop: ['ALL']`. The default is the small set a root build
   * needs to own and chmod its files and to drop to another user (package managers do):
   * CHOWN, DAC_OVERRIDE, FOWNER, SETGID, SETUID. `none` runs with no capability at all.
   */
  capAdd: string[];
  /** `missing` pulls an image that is not present locally; `never` fails at once (offline hosts, tests). */
  pullPolicy: 'missing' | 'never';
  pullTimeoutMs: number;
  /** Seconds `docker stop` waits before it kills the container. */
  stopTimeoutSeconds: number;
  /** Run docker-init as PID 1 so that orphaned build processes are reaped. */
  init: boolean;
  /** User that exec'd commands run as (image default when empty). */
  execUser: string;
  /**
   * A read-only root filesystem: a build can write only to /workspace (the run's workspace)
   * and to a /tmp of `tmpBytes` in memory (tmpfs, counted against the memory limit).
   */
  readOnlyRoot: boolean;
  tmpBytes: number;
  /**
   * Deadline of each call to the Docker engine (inspect, create, start, stop, remove, exec
   * create/start/inspect, list): a hung engine fails the step with a message naming the call.
   * A command's output stream has none (the step's timeout ends it); a pull has the pull timeout.
   */
  dockerTimeoutMs: number;
}

export const DEFAULT_CAP_ADD = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETGID', 'SETUID'];
export const DEFAULT_BUILD_IMAGE = 'conveyor/build:latest';

type Env = Record<string, string | undefined>;

export function buildContainerOptionsFromEnv(env: Env = process.env): BuildContainerOptions {
  return {
    network: text(env, 'CONVEYOR_DOCKER_NETWORK', 'bridge', /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/),
    memoryBytes: dockerBytes(env, 'CONVEYOR_CONTAINER_MEMORY', '2g'),
    nanoCpus: cpus(env, 'CONVEYOR_CONTAINER_CPUS', '2'),
    pidsLimit: positiveInt(env, 'CONVEYOR_CONTAINER_PIDS', 512),
    defaultImage: text(env, 'CONVEYOR_DEFAULT_IMAGE', DEFAULT_BUILD_IMAGE, /^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/),
    capAdd: capabilities(env, 'CONVEYOR_CONTAINER_CAPS'),
    pullPolicy: oneOf(env, 'CONVEYOR_IMAGE_PULL', 'missing', ['missing', 'never'] as const),
    pullTimeoutMs: duration(env, 'CONVEYOR_IMAGE_PULL_TIMEOUT', '10m'),
    stopTimeoutSeconds: Math.max(0, Math.round(duration(env, 'CONVEYOR_CONTAINER_STOP_TIMEOUT', '5s') / 1000)),
    init: oneOf(env, 'CONVEYOR_CONTAINER_INIT', 'true', ['true', 'false'] as const) === 'true',
    execUser: text(env, 'CONVEYOR_CONTAINER_USER', '', /^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/),
    readOnlyRoot: oneOf(env, 'CONVEYOR_CONTAINER_READ_ONLY', 'false', ['true', 'false'] as const) === 'true',
    tmpBytes: dockerBytes(env, 'CONVEYOR_CONTAINER_TMP_SIZE', '512m'),
    dockerTimeoutMs: positiveDuration(env, 'CONVEYOR_DOCKER_TIMEOUT', '30s'),
  };
}

function text(env: Env, key: string, fallback: string, pattern: RegExp): string {
  const raw = env[key]?.trim();
  if (!raw) return fallback;
  if (!pattern.test(raw)) throw new ConfigError(`${key}=${raw}: not a valid value`);
  return raw;
}

function oneOf<T extends string>(env: Env, key: string, fallback: T, allowed: readonly T[]): T {
  const raw = (env[key]?.trim().toLowerCase() || fallback) as T;
  if (!allowed.includes(raw)) throw new ConfigError(`${key}=${raw}: expected one of ${allowed.join(', ')}`);
  return raw;
}

function positiveInt(env: Env, key: string, fallback: number): number {
  const raw = env[key]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${key}=${raw}: expected a positive integer`);
  return n;
}

function duration(env: Env, key: string, fallback: string): number {
  const raw = env[key]?.trim() || fallback;
  const ms = parseDuration(raw);
  if (ms === undefined) throw new ConfigError(`${key}=${raw}: expected a duration such as 500ms, 30s or 5m`);
  return ms;
}

function positiveDuration(env: Env, key: string, fallback: string): number {
  const ms = duration(env, key, fallback);
  if (ms <= 0) throw new ConfigError(`${key}=${env[key]?.trim()}: expected a duration above zero such as 10s or 1m`);
  return ms;
}

const DOCKER_BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Docker's own size notation (`512m`, `2g`, also `2gb`), as `docker run --memory` takes it. */
export function parseDockerBytes(raw: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)b?$/i.exec(raw.trim());
  if (!m) return undefined;
  const n = Math.round(Number(m[1]) * DOCKER_BYTE_UNITS[m[2].toLowerCase()]);
  return n > 0 ? n : undefined;
}

function dockerBytes(env: Env, key: string, fallback: string): number {
  const raw = env[key]?.trim() || fallback;
  const n = parseDockerBytes(raw);
  // Docker refuses a memory limit under 6 MB.
  if (n === undefined || n < 6 * 1024 ** 2) throw new ConfigError(`${key}=${raw}: expected a size of at least 6m such as 512m or 2g`);
  return n;
}

function cpus(env: Env, key: string, fallback: string): number {
  const raw = env[key]?.trim() || fallback;
  const n = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || !(n > 0)) throw new ConfigError(`${key}=${raw}: expected a number of CPUs such as 0.5 or 2`);
  return Math.round(n * 1e9);
}

function capabilities(env: Env, key: string): string[] {
  const raw = env[key]?.trim();
  if (!raw) return [...DEFAULT_CAP_ADD];
  if (raw.toLowerCase() === 'none') return [];
  const caps = raw.split(',').map((c) => c.trim().toUpperCase().replace(/^CAP_/, '')).filter(Boolean);
  for (const cap of caps) {
    if (!/^[A-Z_]+$/.test(cap)) throw new ConfigError(`${key}=${raw}: "${cap}" is not a capability name`);
    // Giving these back would undo the sandbox; use a privileged runner outside Conveyor instead.
    if (cap === 'ALL' || cap === 'SYS_ADMIN') throw new ConfigError(`${key}=${raw}: ${cap} is not allowed`);
  }
  return caps;
}
