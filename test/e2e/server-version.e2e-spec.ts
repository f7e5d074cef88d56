import { existsSync, rmSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { loadConfig } from '@conveyor/config';
import { connectJetStream, NATS_SERVER_MIN_VERSION, NatsServerTooOldError, serverVersionProblem } from '@conveyor/jetstream';
import { BUILTIN_DRIVERS, BuiltinDriverFleet } from '../support/builtin-drivers';
import { NatsServer } from '../support/nats-server';
import { runToExit, waitFor } from '../support/processes';

// Starting five Node processes on a busy 2-core machine takes seconds; runToExit bounds each at 30 s.
jest.setTimeout(60_000);

/**
 * Every app refuses a nats-server older than NATS_SERVER_MIN_VERSION at start-up, saying why,
 * against a real old server: Debian bookworm's nats-server 2.9.10, which test/run.sh fetches
 * into .data/nats-server-2.9/ and names in NATS_SERVER_OLD_BIN.
 */
const REFUSAL =
  /nats-server 2\.9\.\d+ at 127\.0\.0\.1:\d+ is too old: Conveyor needs 2\.11\.0 or newer \(fenced run transitions use the wildcard expected-sequence check and message TTLs\); install the current one \(deploy\/local\/setup\.sh does\)/;

/** The old binary; without it this suite fails (it is never skipped). */
function oldServerBin(): string {
  const bin = process.env.NATS_SERVER_OLD_BIN;
  if (!bin) {
    throw new Error(
      'NATS_SERVER_OLD_BIN is not set: this test needs an old nats-server (Debian bookworm\'s 2.9.10). test/run.sh fetches it into .data/nats-server-2.9/; by hand: ' +
        'cd DIR && apt-get download nats-server/bookworm && dpkg -x nats-server_*.deb root, then NATS_SERVER_OLD_BIN=DIR/root/usr/sbin/nats-server',
    );
  }
  if (!existsSync(bin)) throw new Error(`NATS_SERVER_OLD_BIN=${bin}: no such file`);
  return bin;
}

/** An app's run ended with a non-zero exit code (not a kill) and the refusal in its output; on failure jest shows the whole output. */
function expectRefused(app: string, r: { code: number | null; signal: NodeJS.Signals | null; output: string }): void {
  expect({ app, exitedNonZero: typeof r.code === 'number' && r.code !== 0, signal: r.signal, output: r.output }).toEqual({
    app,
    exitedNonZero: true,
    signal: null,
    output: expect.stringMatching(REFUSAL),
  });
}

describe('a nats-server older than 2.11 is refused at start-up', () => {
  let old: NatsServer | undefined;
  const connections = async () => (await old!.monitor<{ num_connections: number }>('/connz')).num_connections;

  beforeAll(async () => {
    // No wire check: its connection would be one more in the /connz counts below.
    old = await NatsServer.start({ bin: oldServerBin(), monitor: true, wire: false });
  });

  afterAll(async () => {
    await old?.dispose();
  });

  it('connectJetStream rejects with the reason and leaves no connection open', async () => {
    const server = old!;
    // The monitor sees a client that is connected (so that "none" below means something).
    const probe = await connect({ servers: server.url });
    expect(probe.info?.version).toMatch(/^2\.9\./);
    expect(serverVersionProblem(probe.info?.version)).toBeDefined();
    await waitFor('the probe connection in /connz', async () => ((await connections()) === 1 ? true : undefined), 5_000);
    await probe.close();
    await waitFor('no connection in /connz', async () => ((await connections()) === 0 ? true : undefined), 5_000);

    const err = await connectJetStream(loadConfig({ CONVEYOR_NATS_URL: server.url })).then(
      async (ctx) => {
        // Accepted: close it, or its reconnecting for ever would keep jest from exiting.
        await ctx.nc.close();
        return new Error(`connectJetStream accepted nats-server ${ctx.nc.info?.version}`);
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NatsServerTooOldError);
    expect((err as Error).message).toMatch(REFUSAL);
    expect(err).toMatchObject({ minimum: NATS_SERVER_MIN_VERSION, version: expect.stringMatching(/^2\.9\./) });
    // Closed before the error was thrown: the server holds no client of ours.
    await waitFor('no connection in /connz after the refusal', async () => ((await connections()) === 0 ? true : undefined), 5_000);
  });

  it('every built-in driver process exits non-zero and says why', async () => {
    const fleet = new BuiltinDriverFleet(old!.url);
    try {
      const results = await Promise.all(BUILTIN_DRIVERS.map((d) => runToExit(`apps/${d}/src/main.js`, fleet.env(`old-server-${d}`))));
      for (const [i, r] of results.entries()) {
        expectRefused(BUILTIN_DRIVERS[i], r);
        expect(r.output).not.toContain('Nest microservice successfully started');
      }
    } finally {
      rmSync(fleet.workspaceRoot, { recursive: true, force: true });
    }
  });

  it('the gateway process exits non-zero and says why', async () => {
    const r = await runToExit('apps/gateway/src/main.js', { CONVEYOR_NATS_URL: old!.url, CONVEYOR_HTTP_HOST: '127.0.0.1', CONVEYOR_HTTP_PORT: '0' });
    expectRefused('gateway', r);
    expect(r.output).not.toMatch(/listening on/);
  });
});

describe('the nats-server the tests run is new enough', () => {
  let current: NatsServer | undefined;

  beforeAll(async () => {
    current = await NatsServer.start();
  });

  afterAll(async () => {
    await current?.dispose();
  });

  it('connectJetStream accepts it', async () => {
    const ctx = await connectJetStream(loadConfig({ CONVEYOR_NATS_URL: current!.url }));
    try {
      expect(serverVersionProblem(ctx.nc.info?.version)).toBeUndefined();
    } finally {
      await ctx.nc.close();
    }
  });
});
