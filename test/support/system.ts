import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import type { PipelineStep, Run, RunStatus } from '@conveyor/contracts';
import { loadConfig } from '@conveyor/config';
import { createGateway } from '../../apps/gateway/src/bootstrap';
import { Api } from './api';
import { NatsServer } from './nats-server';
import type { NatsCluster } from './nats-cluster';
import { AppProcess, startTestDriver, waitFor } from './processes';

/** Agents heartbeat fast in tests, so a dead one drops off the list within seconds. */
const HEARTBEAT = '1s';

/** What a TestSystem runs on: one nats-server, or a cluster (`url` then lists every node). */
type Nats = NatsServer | NatsCluster;

/**
 * A whole Conveyor for a test: a real nats-server (or a given cluster), the gateway in this
 * process, and test driver processes; plus helpers to make pipelines and runs.
 */
export class TestSystem<N extends Nats = NatsServer> {
  readonly drivers: AppProcess[] = [];
  readonly journal: string;
  private readonly dir: string;
  private seq = 0;

  private constructor(
    readonly nats: N,
    public gateway: INestApplication,
    public api: Api,
    private readonly driverEnv: Record<string, string>,
    private readonly gatewayEnv: Record<string, string> = {},
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'conveyor-test-'));
    this.journal = join(this.dir, 'journal.log');
  }

  static async start(driverEnv: Record<string, string> = {}): Promise<TestSystem> {
    return TestSystem.on(await NatsServer.start(), driverEnv);
  }

  /**
   * A system on NATS the caller started (e.g. a NatsCluster); `env` (e.g. CONVEYOR_REPLICAS)
   * goes to the gateway and every driver. `stop()` disposes of `nats` too.
   */
  static async on<N extends Nats>(nats: N, driverEnv: Record<string, string> = {}, env: Record<string, string> = {}): Promise<TestSystem<N>> {
    const { app, api } = await TestSystem.gatewayOn(nats, env);
    const sys = new TestSystem(nats, app, api, { ...env, ...driverEnv }, env);
    await api.ok('POST', '/resource-definitions', { name: 'thing', version: '1', schema: { type: 'object' } });
    return sys;
  }

  /** `port` 0: a free one. With CONVEYOR_API_TOKENS in `env`, `api` uses its first admin token. */
  private static async gatewayOn(nats: Nats, env: Record<string, string>, port = 0): Promise<{ app: INestApplication; api: Api }> {
    const app = await createGateway(loadConfig({ CONVEYOR_NATS_URL: nats.url, CONVEYOR_HTTP_PORT: '0', CONVEYOR_HEARTBEAT_INTERVAL: HEARTBEAT, ...env }), { logger: ['error'] });
    await app.listen(port, '127.0.0.1');
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    const admin = /(?:^|,)\s*([^,:\s]+):admin\b/.exec(env.CONVEYOR_API_TOKENS ?? '')?.[1];
    return { app, api: new Api(url, admin) };
  }

  /**
   * Stops the gateway and starts another; `meanwhile` runs while none is up. `samePort`: the new
   * one listens where the old one did, so clients that reconnect (a browser) find it.
   */
  async restartGateway(meanwhile?: () => Promise<void>, opts: { samePort?: boolean } = {}): Promise<void> {
    const port = opts.samePort ? Number(new URL(this.api.baseUrl).port) : 0;
    await this.gateway.close();
    await meanwhile?.();
    const { app, api } = await TestSystem.gatewayOn(this.nats, this.gatewayEnv, port);
    this.gateway = app;
    this.api = api;
  }

  /** Starts a test driver process serving `drivers`, with a readable agent id. */
  async startDriver(drivers: string[], env: Record<string, string> = {}): Promise<AppProcess> {
    const agent = `agent-${++this.seq}`;
    const p = await startTestDriver(drivers, {
      CONVEYOR_NATS_URL: this.nats.url,
      CONVEYOR_AGENT_ID: agent,
      CONVEYOR_ACK_WAIT: '3s',
      CONVEYOR_RETRY_BACKOFF: '200ms',
      CONVEYOR_DRAIN_TIMEOUT: '10s',
      CONVEYOR_HEARTBEAT_INTERVAL: HEARTBEAT,
      TEST_DRIVER_JOURNAL: this.journal,
      ...this.driverEnv,
      ...env,
    });
    this.drivers.push(p);
    return p;
  }

  /** Creates a pipeline of the given steps (fresh name) and starts a run of it. */
  async run(steps: Array<Partial<PipelineStep> & { driver: string }>, pipeline: { failFast?: boolean } = {}): Promise<string> {
    const name = await this.pipeline(steps, pipeline);
    return this.trigger(name);
  }

  async pipeline(steps: Array<Partial<PipelineStep> & { driver: string }>, pipeline: { failFast?: boolean } = {}): Promise<string> {
    const name = `p-${++this.seq}`;
    await this.api.ok('POST', '/pipelines', {
      name,
      resource: 'thing',
      steps: steps.map((s, i) => ({ id: s.id ?? `s${i + 1}`, name: s.name ?? `step ${i + 1}`, ...s })),
      ...pipeline,
    });
    return name;
  }

  async trigger(pipeline: string): Promise<string> {
    const res = await this.api.ok<{ runid: string }>('POST', '/resources', { name: `r-${++this.seq}`, resource: 'thing', pipeline, spec: {} });
    return res.runid;
  }

  /** Waits (bounded) until the run reached one of `statuses`, and returns it. */
  waitForRun(runId: string, statuses: RunStatus[] = ['succeeded', 'failed', 'cancelled'], timeoutMs = 60_000): Promise<Run> {
    return waitFor(`run ${runId} to be ${statuses.join('/')}`, async () => {
      const run = await this.api.run(runId);
      return statuses.includes(run.status) ? run : undefined;
    }, timeoutMs, 100);
  }

  /** Journal lines `<run> <step> <attempt> <agent> start|done` written by test drivers. */
  journalOf(runId: string): Array<{ step: string; attempt: number; agent: string; what: string }> {
    if (!existsSync(this.journal)) return [];
    return readFileSync(this.journal, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith(runId + ' '))
      .map((l) => {
        const [, step, attempt, agent, what] = l.split(' ');
        return { step, attempt: Number(attempt), agent, what };
      });
  }

  async stop(): Promise<void> {
    await Promise.all(this.drivers.map((d) => d.stop('SIGKILL')));
    await this.gateway?.close().catch(() => undefined);
    await this.nats.dispose();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
