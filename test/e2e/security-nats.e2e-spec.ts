import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Api } from '../support/api';
import { BuiltinDriverFleet, buildOutput, tutorialPipeline } from '../support/builtin-drivers';
import { ensureBuildImage, ensureDockerEngine } from '../support/docker';
import { startGateway, type RunningGateway } from '../support/gateway';
import { makeTestRepository, type TestRepository } from '../support/git-repo';
import { freePort } from '../support/nats-server';
import { waitFor } from '../support/processes';
import { loadConfig } from '@conveyor/config';
import { connectJetStream } from '@conveyor/jetstream';

jest.setTimeout(180_000);

const AUTH_CONF = join(__dirname, '..', '..', 'deploy', 'nats', 'auth.conf');
const GATEWAY_PASS = `gw${randomBytes(12).toString('hex')}`;
const DRIVER_PASS = `drv${randomBytes(12).toString('hex')}`;

/**
 * deploy/nats/auth.conf, as shipped, on a real nats-server: the whole system works with the
 * gateway's and the drivers' credentials, and a driver's credentials cannot touch what is not
 * a driver's business.
 */
describe('NATS authentication and per-role permissions (deploy/nats/auth.conf)', () => {
  const docker = new Docker();
  let dir: string;
  let server: ChildProcess;
  let url: string;
  let gw: RunningGateway;
  let fleet: BuiltinDriverFleet;
  let repo: TestRepository;
  let asDriver: NatsConnection;
  let serverLog = '';

  beforeAll(async () => {
    await ensureDockerEngine();
    ensureBuildImage();
    repo = makeTestRepository();
    dir = mkdtempSync(join(tmpdir(), 'conveyor-nats-auth-'));
    const port = await freePort();
    url = `nats://127.0.0.1:${port}`;
    const conf = join(dir, 'server.conf');
    writeFileSync(conf, `listen: 127.0.0.1:${port}\njetstream { store_dir: "${join(dir, 'store')}" }\n${readFileSync(AUTH_CONF, 'utf8')}`);
    const env = { ...process.env, CONVEYOR_NATS_GATEWAY_PASS: GATEWAY_PASS, CONVEYOR_NATS_DRIVER_PASS: DRIVER_PASS };
    server = spawn(process.env.NATS_SERVER_BIN || 'nats-server', ['-c', conf], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    serverLog = '';
    server.stderr?.on('data', (d) => (serverLog += d));
    server.stdout?.on('data', (d) => (serverLog += d));
    await waitFor('nats-server with auth.conf to be ready', () => (serverLog.includes('Server is ready') ? true : undefined), 10_000).catch((err: Error) => {
      throw new Error(`${err.message}:\n${serverLog}`);
    });

    gw = await startGateway(url, { CONVEYOR_NATS_USER: 'gateway', CONVEYOR_NATS_PASS: GATEWAY_PASS });
    fleet = new BuiltinDriverFleet(url, { CONVEYOR_NATS_USER: 'driver', CONVEYOR_NATS_PASS: DRIVER_PASS });
    await fleet.startAll();
    asDriver = await connect({ servers: url, user: 'driver', pass: DRIVER_PASS });
  });
  afterAll(async () => {
    await asDriver?.close();
    const left = await fleet?.stop(docker);
    await gw?.close();
    server?.kill('SIGTERM');
    await new Promise((r) => (server && server.exitCode === null ? server.once('exit', r) : r(undefined)));
    if (dir) rmSync(dir, { recursive: true, force: true });
    repo?.dispose();
    expect(left).toBe(0);
  });

  it('refuses connections without or with wrong credentials', async () => {
    await expect(connect({ servers: url, reconnect: false })).rejects.toThrow(/Authorization/i);
    await expect(connect({ servers: url, user: 'driver', pass: 'wrong', reconnect: false })).rejects.toThrow(/Authorization/i);
    await expect(connect({ servers: url, user: 'gateway', pass: DRIVER_PASS, reconnect: false })).rejects.toThrow(/Authorization/i);
  });

  it('runs a whole build with the gateway and driver credentials', async () => {
    const api = new Api(gw.url);
    await api.ok('POST', '/resource-definitions', { name: 'thing', schema: { type: 'object' } });
    await api.ok('POST', '/pipelines', tutorialPipeline('authed', 'thing'));
    const { runid } = await api.ok('POST', '/resources', { name: 'authed', resource: 'thing', pipeline: 'authed', spec: { repository: repo.url, commands: ['echo with-auth'] } });
    const run = await waitFor('the run to end', async () => {
      const r = await api.run(runid);
      return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined;
    }, 120_000, 200);
    expect(run.status).toBe('succeeded');
    expect(await buildOutput(api, runid)).toEqual(['with-auth']);
    // Nothing the gateway or a driver did on the way was refused by the server.
    expect(serverLog.match(/.*violation.*/gi) ?? []).toEqual([]);
  });

  it("a driver's credentials cannot write state, delete streams, or listen to everything", async () => {
    const js = jetstream(asDriver, { timeout: 3_000 });
    const jsm = await jetstreamManager(asDriver, { timeout: 3_000 });
    const kvm = new Kvm(js);
    const definitions = await kvm.open('conveyor-definitions');
    await expect(definitions.put('thing', JSON.stringify({ name: 'thing', schema: {} }))).rejects.toThrow(/permission|timeout|no responders/i);
    await expect(jsm.streams.delete('CONVEYOR_RUNS')).rejects.toThrow(/permission|timeout/i);
    await expect(jsm.streams.purge('CONVEYOR_LOGS')).rejects.toThrow(/permission|timeout/i);
    await expect(js.publish('$KV.conveyor-runs.x', 'forged')).rejects.toThrow(/permission|timeout|no responders/i);
    // Nor forge a schedule's tick (which would start a run).
    await expect(js.publish('conveyor.ticks.nightly', JSON.stringify({ v: 1, schedule: 'nightly' }))).rejects.toThrow(/permission|timeout|no responders/i);
    // A subscription it may not have is refused by the server (reported on the connection).
    const sub = asDriver.subscribe('conveyor.>');
    const closed = sub.closed.then(() => 'closed by the server', (e: Error) => e.message);
    await asDriver.flush();
    expect(await Promise.race([closed, new Promise((r) => setTimeout(() => r('still open'), 3_000))])).toMatch(/closed by the server|permission/i);
    expect(sub.getProcessed()).toBe(0);
    // The server saw (and logged) the refused attempts. Its log reaches us through a pipe,
    // possibly after the client already heard of the refusal, so wait for the line.
    await waitFor('the server to log the refused subscription', () => (/Subscription Violation/i.test(serverLog) ? true : undefined), 10_000);
    // Nothing changed: the definition is as the gateway stored it, the streams are there.
    const stored = await new Api(gw.url).ok('GET', '/resource-definitions/thing');
    expect(stored.schema).toEqual({ type: 'object' });
    expect((await jsm.streams.info('CONVEYOR_RUNS')).config.name).toBe('CONVEYOR_RUNS');
  });
});

/** CONVEYOR_NATS_TLS_CA/_CERT/_KEY against a nats-server that requires TLS and client certificates. */
describe('NATS over TLS with client certificates', () => {
  let dir: string;
  let server: ChildProcess;
  let url: string;
  const pem = (name: string) => join(dir, name);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'conveyor-nats-tls-'));
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=conveyor-test-ca', '-keyout', 'ca-key.pem', '-out', 'ca.pem');
    writeFileSync(pem('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    for (const who of ['server', 'client']) {
      ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${who}`, '-keyout', `${who}-key.pem`, '-out', `${who}.csr`);
      ssl('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '1', '-extfile', 'san.ext', '-out', `${who}.pem`);
    }
    const port = await freePort();
    url = `nats://127.0.0.1:${port}`;
    writeFileSync(
      pem('server.conf'),
      `listen: 127.0.0.1:${port}\njetstream { store_dir: "${join(dir, 'store')}" }\ntls { cert_file: "${pem('server.pem')}", key_file: "${pem('server-key.pem')}", ca_file: "${pem('ca.pem')}", verify: true }\n`,
    );
    server = spawn(process.env.NATS_SERVER_BIN || 'nats-server', ['-c', pem('server.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    server.stderr?.on('data', (d) => (log += d));
    await waitFor('nats-server with TLS to be ready', () => (log.includes('Server is ready') ? true : undefined), 10_000).catch((err: Error) => {
      throw new Error(`${err.message}:\n${log}`);
    });
  });
  afterAll(async () => {
    server?.kill('SIGTERM');
    await new Promise((r) => (server && server.exitCode === null ? server.once('exit', r) : r(undefined)));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('connects with the CA and a client certificate, and not without them', async () => {
    // connectJetStream retries for ever (agents must survive a NATS outage): bound it here.
    let timer: NodeJS.Timeout | undefined;
    const ctx = await Promise.race([connectJetStream(loadConfig({ CONVEYOR_NATS_URL: url, CONVEYOR_NATS_TLS_CA: pem('ca.pem'), CONVEYOR_NATS_TLS_CERT: pem('client.pem'), CONVEYOR_NATS_TLS_KEY: pem('client-key.pem') })), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no TLS connection within 15 s')), 15_000)))]).finally(() => clearTimeout(timer));
    try {
      expect(ctx.nc.info?.tls_required).toBe(true);
      expect(await ctx.nc.rtt()).toBeGreaterThanOrEqual(0);
    } finally {
      await ctx.nc.close();
    }
    // Without a client certificate the server refuses; without TLS options the client does.
    await expect(connect({ servers: url, tls: { caFile: pem('ca.pem') }, reconnect: false, timeout: 3_000 })).rejects.toThrow();
    await expect(connect({ servers: url, reconnect: false, timeout: 3_000 })).rejects.toThrow();
  });
});
