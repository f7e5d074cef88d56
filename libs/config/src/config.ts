import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { loadApiAuthConfig, type ApiAuthConfig } from '@conveyor/auth';
import { ANY_MACHINE, DEFAULT_PREFIX, nameFromDnsName } from '@conveyor/contracts';

/**
 * Every setting of every app, read from the environment in one place so that the README's
 * configuration table and the code cannot drift apart. A bad value stops the process at
 * start-up with a message naming the variable.
 */
export interface ConveyorConfig {
  nats: {
    servers: string[];
    user?: string;
    pass?: string;
    token?: string;
    credsFile?: string;
    /** TLS to NATS: a CA to verify the server, and a client certificate and key when the server asks for one. */
    tls?: { caFile?: string; certFile?: string; keyFile?: string };
    name: string;
  };
  prefix: string;
  /** Replicas of every stream and bucket: 1 on a single server, 3 on a cluster. */
  replicas: number;
  retention: {
    /** How long the runs stream keeps each run's log (its work and records). */
    runLogMaxAgeMs: number;
    logsMaxAgeMs: number;
    logsMaxBytes: number;
    deadLettersMaxAgeMs: number;
    /** How long the runs bucket keeps a run record after its last change. */
    runsMaxAgeMs: number;
    /** How long the ticks stream keeps schedules' ticks (and the tick → run records). */
    ticksMaxAgeMs: number;
    /** How long a webhook delivery id is remembered (a forge's redelivery within it starts no second run). */
    hookDeliveriesMaxAgeMs: number;
  };
  /**
   * `runsListScan`: run records a filtered `GET /runs` reads at most, newest first.
   * `sseMaxRunFeeds`: open `GET /runs/events` streams per gateway (each holds a KV watch).
   * `hookBodyLimitBytes`: the body limit of `POST /hooks/:trigger` (forges send large pushes).
   * `webDir`: the built web dashboard (CONVEYOR_WEB_DIR); undefined: found beside the gateway.
   */
  http: { port: number; host: string; bodyLimitBytes: number; hookBodyLimitBytes: number; sseMaxPerRun: number; sseMaxRunFeeds: number; runsListScan: number; webDir?: string };
  /** Limits and retention of runs' artifacts (see libs/artifacts). */
  artifacts: { maxFileBytes: number; maxStepBytes: number; maxRunBytes: number; maxFiles: number; maxAgeMs: number };
  /** Limits of build caches (see libs/caches): an entry, all entries, and unused age. */
  caches: { maxEntryBytes: number; maxTotalBytes: number; maxAgeMs: number };
  /**
   * Commit statuses and notifications (see the gateway's reports): tries of one report before it
   * is given up on, the back-off between tries (doubling from `retryBaseMs` up to `retryMaxMs`,
   * unless the receiver's Retry-After or rate-limit headers say when), each request's time limit,
   * how long reports are kept, and the address of the dashboard the statuses link to.
   */
  reports: { maxAttempts: number; retryBaseMs: number; retryMaxMs: number; timeoutMs: number; maxAgeMs: number; publicUrl: string };
  /** API tokens and their roles (none: an open API, loopback only unless allowed). */
  auth: ApiAuthConfig;
  /** CONVEYOR_SECRET_KEY (32 bytes): secrets are stored and read only with it. */
  secretKey?: Buffer;
  steps: {
    defaultTimeoutMs: number;
    defaultRetries: number;
    retryBackoffMs: number;
    retryBackoffMaxMs: number;
    /** How long JetStream waits for an ack before redelivering; kept alive with in-progress acks. */
    ackWaitMs: number;
    /**
     * How long the streams remember message ids: a hand-off repeated within it (by the
     * redelivery of a step whose agent stopped before its ack) is stored once.
     */
    dedupeWindowMs: number;
  };
  agent: { id: string; machine: string; concurrency: number; heartbeatMs: number };
  /** How long pinned work may wait for an agent of its machine before its run fails. */
  machineGraceMs: number;
  /** A build machine's consumers are removed by the server when no agent pulled from them this long. */
  machineConsumerTtlMs: number;
  /** How long work may wait while no agent of its driver is alive before its run fails. */
  driverGraceMs: number;
  /** How often the gateway looks for runs that have not ended and have no work in flight (see RunReconciler). */
  reconcileIntervalMs: number;
  /** How long an approval step waits for a person when its own `timeout` does not say. */
  approvalTimeoutMs: number;
  /**
   * (container-start) How long the build machine's janitor leaves a run's container and
   * workspace after the run ended, vanished or moved to another machine; undefined: no janitor.
   */
  janitorGraceMs?: number;
  /**
   * OpenTelemetry traces (see libs/tracing): undefined, and no SDK started, unless
   * CONVEYOR_OTEL_ENDPOINT is set.
   */
  tracing?: { endpoint: string; serviceName: string; sampleRatio: number; exportDelayMs: number };
  /**
   * CONVEYOR_CONFORMANCE=1 (drivers): steps do what their conformance instruction says instead
   * of the driver's handler, for `conveyor conformance` (see libs/conformance). Off by default.
   */
  conformance?: boolean;
}

export class ConfigError extends Error {}

/** Agent and machine ids take host and Kubernetes names as they come (see nameFromDnsName). */
function dnsName(env: Env, key: string): string | undefined {
  const raw = env[key]?.trim();
  if (!raw) return undefined;
  const name = nameFromDnsName(raw);
  if (!name) throw new ConfigError(`${key}=${raw}: must be a host name (letters, digits, "-" and "."), at most 253 characters`);
  return name;
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env, defaults: { concurrency?: number; name?: string } = {}): ConveyorConfig {
  const prefix = env.CONVEYOR_PREFIX?.trim() || DEFAULT_PREFIX;
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) {
    throw new ConfigError(`CONVEYOR_PREFIX=${prefix}: use tokens of letters, digits, "_" and "-" separated by "."`);
  }
  const host = hostname().toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'host';
  const ackWaitMs = duration(env, 'CONVEYOR_ACK_WAIT', '30s');
  // An agent keeps a step's message with an in-progress ack every third of the ack wait,
  // from delivery to ack; below a second one late timer would let the message go.
  if (ackWaitMs < 1000) throw new ConfigError(`CONVEYOR_ACK_WAIT=${env.CONVEYOR_ACK_WAIT}: at least 1s, so that in-progress acks keep a step's message through its hand-off`);
  const dedupeWindowMs = duration(env, 'CONVEYOR_DEDUPE_WINDOW', '2m');
  // A redelivery comes up to an ack wait after the hand-off it may repeat; the repeat must
  // still be recognised, with room for the redelivery to wait for a free agent.
  if (dedupeWindowMs < 2 * ackWaitMs) {
    throw new ConfigError(`CONVEYOR_DEDUPE_WINDOW=${env.CONVEYOR_DEDUPE_WINDOW ?? '2m'} must be at least twice CONVEYOR_ACK_WAIT=${env.CONVEYOR_ACK_WAIT ?? '30s'}`);
  }
  const agentId = dnsName(env, 'CONVEYOR_AGENT_ID') ?? `${host}-${process.pid}`;
  const machine = dnsName(env, 'CONVEYOR_MACHINE_ID') ?? host;
  // `any` stands for "any machine" in work subjects (see Subjects.work).
  if (machine === ANY_MACHINE) throw new ConfigError(`CONVEYOR_MACHINE_ID=${machine}: "${ANY_MACHINE}" is reserved; name the machine otherwise`);
  return {
    nats: {
      servers: list(env.CONVEYOR_NATS_URL, ['nats://127.0.0.1:4222']),
      user: env.CONVEYOR_NATS_USER || undefined,
      pass: env.CONVEYOR_NATS_PASS || undefined,
      token: env.CONVEYOR_NATS_TOKEN || undefined,
      credsFile: env.CONVEYOR_NATS_CREDS || undefined,
      tls: natsTls(env),
      name: defaults.name ?? 'conveyor',
    },
    prefix,
    replicas: int(env, 'CONVEYOR_REPLICAS', 1, 1, 5),
    retention: {
      runLogMaxAgeMs: duration(env, 'CONVEYOR_RUN_LOG_MAX_AGE', '30d'),
      logsMaxAgeMs: duration(env, 'CONVEYOR_LOGS_MAX_AGE', '7d'),
      logsMaxBytes: bytes(env, 'CONVEYOR_LOGS_MAX_BYTES', '1gb'),
      deadLettersMaxAgeMs: duration(env, 'CONVEYOR_DLQ_MAX_AGE', '30d'),
      runsMaxAgeMs: duration(env, 'CONVEYOR_RUNS_MAX_AGE', '30d'),
      ticksMaxAgeMs: duration(env, 'CONVEYOR_TICKS_MAX_AGE', '7d'),
      hookDeliveriesMaxAgeMs: duration(env, 'CONVEYOR_HOOK_DELIVERIES_MAX_AGE', '7d'),
    },
    http: {
      port: int(env, 'CONVEYOR_HTTP_PORT', 8080, 0, 65535),
      host: env.CONVEYOR_HTTP_HOST?.trim() || '127.0.0.1',
      bodyLimitBytes: bytes(env, 'CONVEYOR_BODY_LIMIT', '1mb'),
      hookBodyLimitBytes: bytes(env, 'CONVEYOR_HOOK_BODY_LIMIT', '5mb'),
      sseMaxPerRun: int(env, 'CONVEYOR_SSE_MAX_PER_RUN', 20, 1, 10_000),
      sseMaxRunFeeds: int(env, 'CONVEYOR_SSE_MAX_RUN_FEEDS', 100, 1, 100_000),
      runsListScan: int(env, 'CONVEYOR_RUNS_LIST_SCAN', 5000, 500, 1_000_000),
      webDir: env.CONVEYOR_WEB_DIR?.trim() || undefined,
    },
    artifacts: {
      maxFileBytes: bytes(env, 'CONVEYOR_ARTIFACT_MAX_BYTES', '1gb'),
      maxStepBytes: bytes(env, 'CONVEYOR_ARTIFACTS_MAX_STEP_BYTES', '2gb'),
      maxRunBytes: bytes(env, 'CONVEYOR_ARTIFACTS_MAX_RUN_BYTES', '5gb'),
      maxFiles: int(env, 'CONVEYOR_ARTIFACTS_MAX_FILES', 1000, 1, 100_000),
      maxAgeMs: duration(env, 'CONVEYOR_ARTIFACTS_MAX_AGE', '30d'),
    },
    caches: {
      maxEntryBytes: bytes(env, 'CONVEYOR_CACHE_MAX_BYTES', '2gb'),
      maxTotalBytes: bytes(env, 'CONVEYOR_CACHES_MAX_BYTES', '10gb'),
      maxAgeMs: duration(env, 'CONVEYOR_CACHES_MAX_AGE', '7d'),
    },
    reports: loadReportsConfig(env),
    auth: loadApiAuthConfig(env),
    secretKey: loadSecretKey(env),
    steps: {
      defaultTimeoutMs: duration(env, 'CONVEYOR_STEP_TIMEOUT', '1h'),
      defaultRetries: int(env, 'CONVEYOR_STEP_RETRIES', 0, 0, 20),
      retryBackoffMs: duration(env, 'CONVEYOR_RETRY_BACKOFF', '1s'),
      retryBackoffMaxMs: duration(env, 'CONVEYOR_RETRY_BACKOFF_MAX', '5m'),
      ackWaitMs,
      dedupeWindowMs,
    },
    agent: {
      id: agentId,
      machine,
      concurrency: int(env, 'CONVEYOR_CONCURRENCY', defaults.concurrency ?? 1, 1, 1024),
      heartbeatMs: duration(env, 'CONVEYOR_HEARTBEAT_INTERVAL', '5s'),
    },
    machineGraceMs: duration(env, 'CONVEYOR_MACHINE_GRACE', '60s'),
    machineConsumerTtlMs: duration(env, 'CONVEYOR_MACHINE_CONSUMER_TTL', '24h'),
    driverGraceMs: duration(env, 'CONVEYOR_DRIVER_GRACE', '5m'),
    reconcileIntervalMs: duration(env, 'CONVEYOR_RECONCILE_INTERVAL', '30s'),
    approvalTimeoutMs: duration(env, 'CONVEYOR_APPROVAL_TIMEOUT', '24h'),
    janitorGraceMs: env.CONVEYOR_JANITOR_GRACE?.trim().toLowerCase() === 'off' ? undefined : duration(env, 'CONVEYOR_JANITOR_GRACE', '5m'),
    tracing: loadTracingConfig(env, defaults.name ?? 'conveyor'),
    ...(env.CONVEYOR_CONFORMANCE?.trim() === '1' ? { conformance: true } : {}),
  };
}

function loadTracingConfig(env: Env, defaultName: string): ConveyorConfig['tracing'] {
  const endpoint = env.CONVEYOR_OTEL_ENDPOINT?.trim();
  if (!endpoint) return undefined;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ConfigError(`CONVEYOR_OTEL_ENDPOINT=${endpoint}: not a URL (the OTLP/HTTP receiver, e.g. http://127.0.0.1:4318)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`CONVEYOR_OTEL_ENDPOINT=${endpoint}: must be an http or https URL`);
  const rawRatio = env.CONVEYOR_OTEL_SAMPLE_RATIO?.trim();
  const sampleRatio = rawRatio ? Number(rawRatio) : 1;
  if (!(sampleRatio >= 0 && sampleRatio <= 1)) throw new ConfigError(`CONVEYOR_OTEL_SAMPLE_RATIO=${rawRatio}: expected a number from 0 to 1`);
  return {
    endpoint,
    serviceName: env.CONVEYOR_OTEL_SERVICE_NAME?.trim() || defaultName,
    sampleRatio,
    exportDelayMs: duration(env, 'CONVEYOR_OTEL_EXPORT_DELAY', '5s'),
  };
}

function loadReportsConfig(env: Env): ConveyorConfig['reports'] {
  const retryBaseMs = duration(env, 'CONVEYOR_REPORTS_RETRY_BASE', '2s');
  const retryMaxMs = duration(env, 'CONVEYOR_REPORTS_RETRY_MAX', '10m');
  if (retryMaxMs < retryBaseMs) throw new ConfigError(`CONVEYOR_REPORTS_RETRY_MAX=${env.CONVEYOR_REPORTS_RETRY_MAX} is below CONVEYOR_REPORTS_RETRY_BASE`);
  const port = int(env, 'CONVEYOR_HTTP_PORT', 8080, 0, 65535);
  const host = env.CONVEYOR_HTTP_HOST?.trim() || '127.0.0.1';
  const raw = env.CONVEYOR_PUBLIC_URL?.trim();
  let publicUrl = `http://${host === '0.0.0.0' || host === '::' ? hostname() : host.includes(':') ? `[${host}]` : host}:${port}`;
  if (raw) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ConfigError(`CONVEYOR_PUBLIC_URL=${raw}: not a URL (the address users reach the dashboard at, e.g. https://ci.example.com)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`CONVEYOR_PUBLIC_URL=${raw}: must be an http or https URL`);
    publicUrl = url.toString().replace(/\/+$/, '');
  }
  return {
    maxAttempts: int(env, 'CONVEYOR_REPORTS_MAX_ATTEMPTS', 12, 1, 1000),
    retryBaseMs,
    retryMaxMs,
    timeoutMs: duration(env, 'CONVEYOR_REPORTS_TIMEOUT', '10s'),
    maxAgeMs: duration(env, 'CONVEYOR_REPORTS_MAX_AGE', '7d'),
    publicUrl,
  };
}

/** CONVEYOR_SECRET_KEY: 32 random bytes, base64 (`openssl rand -base64 32`); libs/secrets seals with it. */
/** CONVEYOR_SECRET_KEY, or the file CONVEYOR_SECRET_KEY_FILE names (which keeps the key out of the process's environment). */
export function loadSecretKey(env: Env): Buffer | undefined {
  const file = env.CONVEYOR_SECRET_KEY_FILE?.trim();
  if (file && env.CONVEYOR_SECRET_KEY?.trim()) throw new ConfigError('CONVEYOR_SECRET_KEY and CONVEYOR_SECRET_KEY_FILE: set one of them, not both');
  let raw = env.CONVEYOR_SECRET_KEY?.trim();
  if (file) {
    try {
      raw = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`CONVEYOR_SECRET_KEY_FILE=${file} cannot be read: ${(err as Error).message}`);
    }
  }
  if (!raw) return undefined;
  const key = /^[A-Za-z0-9+/]+={0,2}$/.test(raw) ? Buffer.from(raw, 'base64') : Buffer.alloc(0);
  if (key.length !== 32) throw new ConfigError('CONVEYOR_SECRET_KEY must be 32 bytes in base64 (e.g. the output of `openssl rand -base64 32`)');
  return key;
}

function natsTls(env: Env): ConveyorConfig['nats']['tls'] {
  const caFile = env.CONVEYOR_NATS_TLS_CA?.trim() || undefined;
  const certFile = env.CONVEYOR_NATS_TLS_CERT?.trim() || undefined;
  const keyFile = env.CONVEYOR_NATS_TLS_KEY?.trim() || undefined;
  if (!certFile !== !keyFile) throw new ConfigError('CONVEYOR_NATS_TLS_CERT and CONVEYOR_NATS_TLS_KEY go together: set both or neither');
  return caFile || certFile ? { caFile, certFile, keyFile } : undefined;
}

function list(value: string | undefined, fallback: string[]): string[] {
  const items = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return items.length ? items : fallback;
}

function int(env: Env, key: string, fallback: number, min: number, max: number): number {
  const raw = env[key]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${key}=${raw}: expected an integer from ${min} to ${max}`);
  return n;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "500ms", "30s", "5m", "1h", "7d"; a bare number is seconds. */
export function parseDuration(raw: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(raw.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 's']);
}

function duration(env: Env, key: string, fallback: string): number {
  const raw = env[key]?.trim() || fallback;
  const ms = parseDuration(raw);
  if (ms === undefined || ms <= 0) throw new ConfigError(`${key}=${raw}: expected a duration such as 500ms, 30s, 5m, 1h or 7d`);
  return ms;
}

const BYTE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

export function parseBytes(raw: string): number | undefined {
  const m = /^(\d+)(b|kb|mb|gb)?$/i.exec(raw.trim());
  if (!m) return undefined;
  return Number(m[1]) * BYTE_UNITS[(m[2] ?? 'b').toLowerCase()];
}

function bytes(env: Env, key: string, fallback: string): number {
  const raw = env[key]?.trim() || fallback;
  const n = parseBytes(raw);
  if (n === undefined || n <= 0) throw new ConfigError(`${key}=${raw}: expected a size such as 512kb, 1mb or 1gb`);
  return n;
}
