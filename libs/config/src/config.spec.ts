import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseBytes, parseDuration } from './config';

describe('loadConfig', () => {
  it('has working defaults', () => {
    const c = loadConfig({});
    expect(c.nats.servers).toEqual(['nats://127.0.0.1:4222']);
    expect(c.prefix).toBe('conveyor');
    expect(c.replicas).toBe(1);
    expect(c.http).toEqual({ port: 8080, host: '127.0.0.1', bodyLimitBytes: 1024 * 1024, hookBodyLimitBytes: 5 * 1024 * 1024, sseMaxPerRun: 20, sseMaxRunFeeds: 100, runsListScan: 5000 });
    expect(c.http.webDir).toBeUndefined();
    expect(loadConfig({ CONVEYOR_WEB_DIR: ' /srv/web ', CONVEYOR_SSE_MAX_RUN_FEEDS: '3' }).http).toMatchObject({ webDir: '/srv/web', sseMaxRunFeeds: 3 });
    expect(c.retention.runsMaxAgeMs).toBe(30 * 86_400_000);
    expect(c.retention.ticksMaxAgeMs).toBe(7 * 86_400_000);
    expect(loadConfig({ CONVEYOR_TICKS_MAX_AGE: '1h' }).retention.ticksMaxAgeMs).toBe(3_600_000);
    expect(c.retention.hookDeliveriesMaxAgeMs).toBe(7 * 86_400_000);
    expect(c.http.hookBodyLimitBytes).toBe(5 * 1024 * 1024);
    expect(loadConfig({ CONVEYOR_HOOK_BODY_LIMIT: '25mb' }).http.hookBodyLimitBytes).toBe(25 * 1024 * 1024);
    expect(c.steps.ackWaitMs).toBe(30_000);
    expect(c.agent.concurrency).toBe(1);
    expect(c.machineGraceMs).toBe(60_000);
    expect(c.driverGraceMs).toBe(300_000);
    expect(c.reconcileIntervalMs).toBe(30_000);
    expect(c.janitorGraceMs).toBe(300_000);
  });

  it('reads the janitor grace, or turns the janitor off', () => {
    expect(loadConfig({ CONVEYOR_JANITOR_GRACE: '90s' }).janitorGraceMs).toBe(90_000);
    expect(loadConfig({ CONVEYOR_JANITOR_GRACE: 'off' }).janitorGraceMs).toBeUndefined();
  });

  it('reads lists, durations and sizes', () => {
    const c = loadConfig({
      CONVEYOR_NATS_URL: 'nats://a:1, nats://b:2 ,',
      CONVEYOR_REPLICAS: '3',
      CONVEYOR_STEP_TIMEOUT: '90s',
      CONVEYOR_LOGS_MAX_BYTES: '512kb',
      CONVEYOR_AGENT_ID: 'agent-7',
      CONVEYOR_MACHINE_ID: 'rack-1',
    });
    expect(c.nats.servers).toEqual(['nats://a:1', 'nats://b:2']);
    expect(c.replicas).toBe(3);
    expect(c.steps.defaultTimeoutMs).toBe(90_000);
    expect(c.retention.logsMaxBytes).toBe(512 * 1024);
    expect(c.agent).toMatchObject({ id: 'agent-7', machine: 'rack-1' });
  });

  it.each([
    ['CONVEYOR_REPLICAS', '0'],
    ['CONVEYOR_HTTP_PORT', 'http'],
    ['CONVEYOR_STEP_TIMEOUT', '10 minutes'],
    ['CONVEYOR_BODY_LIMIT', '-1'],
    ['CONVEYOR_PREFIX', 'a..b'],
    ['CONVEYOR_PREFIX', 'conveyor.>'],
    ['CONVEYOR_AGENT_ID', 'Agent One'],
    ['CONVEYOR_MACHINE_ID', 'a..b'],
    ['CONVEYOR_DEDUPE_WINDOW', '50s'],
    ['CONVEYOR_DEDUPE_WINDOW', 'never'],
    ['CONVEYOR_JANITOR_GRACE', 'later'],
    ['CONVEYOR_JANITOR_GRACE', '0s'],
    ['CONVEYOR_MACHINE_ID', 'rack/1'],
    ['CONVEYOR_MACHINE_ID', `n${'x'.repeat(253)}`],
    ['CONVEYOR_RUNS_MAX_AGE', 'forever'],
    ['CONVEYOR_TICKS_MAX_AGE', '0s'],
    ['CONVEYOR_HOOK_DELIVERIES_MAX_AGE', '0s'],
    ['CONVEYOR_RUNS_LIST_SCAN', '100'],
  ])('refuses %s=%s with a message naming the variable', (key, value) => {
    expect(() => loadConfig({ [key]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [key]: value })).toThrow(key);
  });

  it('takes host and Kubernetes node names as agent and machine ids', () => {
    const c = loadConfig({ CONVEYOR_MACHINE_ID: 'ip-10-0-1-23.EC2.internal', CONVEYOR_AGENT_ID: 'builder-7f9c4.pool' });
    expect(c.agent).toMatchObject({ machine: 'ip-10-0-1-23-ec2-internal', id: 'builder-7f9c4-pool' });
    // Longer than a Conveyor name: the start and a hash of the whole, so names that share a start stay apart.
    const long = (end: string) => loadConfig({ CONVEYOR_MACHINE_ID: `${'node.'.repeat(14)}${end}` }).agent.machine;
    expect(long('a')).toMatch(/^node-node-[a-z0-9-]+-[0-9a-f]{8}$/);
    expect(long('a').length).toBeLessThanOrEqual(63);
    expect(long('a')).not.toBe(long('b'));
  });

  it('parses durations and sizes', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('2')).toBe(2000);
    expect(parseDuration('1.5m')).toBe(90_000);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(parseDuration('soon')).toBeUndefined();
    expect(parseBytes('1gb')).toBe(1024 ** 3);
    expect(parseBytes('10MB')).toBe(10 * 1024 ** 2);
    expect(parseBytes('lots')).toBeUndefined();
  });
});

describe('loadConfig secret key', () => {
  it('reads CONVEYOR_SECRET_KEY or the file CONVEYOR_SECRET_KEY_FILE names, never both', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    expect(loadConfig({ CONVEYOR_SECRET_KEY: key }).secretKey).toEqual(Buffer.alloc(32, 7));
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-key-'));
    try {
      const file = join(dir, 'secret.key');
      writeFileSync(file, `${key}\n`, { mode: 0o600 });
      expect(loadConfig({ CONVEYOR_SECRET_KEY_FILE: file }).secretKey).toEqual(Buffer.alloc(32, 7));
      expect(() => loadConfig({ CONVEYOR_SECRET_KEY_FILE: file, CONVEYOR_SECRET_KEY: key })).toThrow(/not both/);
      expect(() => loadConfig({ CONVEYOR_SECRET_KEY_FILE: join(dir, 'missing') })).toThrow(/CONVEYOR_SECRET_KEY_FILE=.*cannot be read/);
      writeFileSync(file, 'short');
      expect(() => loadConfig({ CONVEYOR_SECRET_KEY_FILE: file })).toThrow(ConfigError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('loadConfig NATS TLS', () => {
  it('reads CA, certificate and key, and wants certificate and key together', () => {
    expect(loadConfig({}).nats.tls).toBeUndefined();
    expect(loadConfig({ CONVEYOR_NATS_TLS_CA: '/ca.pem' }).nats.tls).toEqual({ caFile: '/ca.pem', certFile: undefined, keyFile: undefined });
    expect(loadConfig({ CONVEYOR_NATS_TLS_CERT: '/c.pem', CONVEYOR_NATS_TLS_KEY: '/k.pem' }).nats.tls).toEqual({ caFile: undefined, certFile: '/c.pem', keyFile: '/k.pem' });
    expect(() => loadConfig({ CONVEYOR_NATS_TLS_CERT: '/c.pem' })).toThrow(/go together/);
  });
});

describe('loadConfig tracing', () => {
  it('is off without CONVEYOR_OTEL_ENDPOINT, and reads the service name, sampling and export delay with it', () => {
    expect(loadConfig({ CONVEYOR_OTEL_SERVICE_NAME: 'x' }).tracing).toBeUndefined();
    expect(loadConfig({ CONVEYOR_OTEL_ENDPOINT: 'http://127.0.0.1:4318' }, { name: 'conveyor-gateway' }).tracing).toEqual({
      endpoint: 'http://127.0.0.1:4318',
      serviceName: 'conveyor-gateway',
      sampleRatio: 1,
      exportDelayMs: 5000,
    });
    expect(
      loadConfig({ CONVEYOR_OTEL_ENDPOINT: 'https://otel.example.com', CONVEYOR_OTEL_SERVICE_NAME: 'ci', CONVEYOR_OTEL_SAMPLE_RATIO: '0.25', CONVEYOR_OTEL_EXPORT_DELAY: '200ms' }).tracing,
    ).toEqual({ endpoint: 'https://otel.example.com', serviceName: 'ci', sampleRatio: 0.25, exportDelayMs: 200 });
    expect(() => loadConfig({ CONVEYOR_OTEL_ENDPOINT: 'localhost:4318' })).toThrow(/CONVEYOR_OTEL_ENDPOINT/);
    expect(() => loadConfig({ CONVEYOR_OTEL_ENDPOINT: 'http://h', CONVEYOR_OTEL_SAMPLE_RATIO: '2' })).toThrow(/CONVEYOR_OTEL_SAMPLE_RATIO/);
  });
});
