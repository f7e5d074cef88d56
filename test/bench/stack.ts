import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { PROJECTOR_CONSUMER } from '@conveyor/contracts';
import { Api } from '../support/api';
import { freePort, NatsServer } from '../support/nats-server';
import { AppProcess, startTestDriver, waitFor } from '../support/processes';
import { monotonicMs as now } from '../drivers/behaviours';
import type { Proc } from './cpu';
import { MessageMeter } from './messages';

export const DRIVERS = ['t1', 't2', 't3', 't4'];
/** The name of the bench's own connection to the stack's server, which watches the runs end. */
const BENCH_CONNECTION = 'bench';

/**
 * A stack of its own for the CPU and scale parts: a fresh nats-server, a gateway, and
 * `agentsPerDriver` test-driver processes for each of the four no-op drivers (one driver per
 * process, as the built-in drivers are deployed), with a 4-step pipeline `noop` over them.
 * `profileDir`: the gateway and the first agent load the bench's CPU profiler (./cpu-profile);
 * `env`: more settings for every process of the stack, `gatewayEnv`: for the gateway;
 * `nodeArgs`: node's own options (V8's heap flags, say) for the gateway and for every agent.
 */
export class Stack {
  private ends = new Map<string, () => void>();
  /** Runs whose end record was seen, and when (monotonic ms). */
  readonly ended = new Map<string, number>();

  private constructor(
    readonly nats: NatsServer,
    readonly gateway: AppProcess,
    readonly agents: AppProcess[],
    readonly api: Api,
    readonly nc: NatsConnection,
    readonly jsm: JetStreamManager,
  ) {
    // Run ends as they are stored: a plain subscription, so watching costs the stack nothing
    // but the server's copy to this process (no polling of the gateway while it is measured).
    nc.subscribe('conveyor.steps.*.end', {
      callback: (_e, m) => {
        const run = m.subject.split('.')[2];
        if (this.ended.has(run)) return;
        this.ended.set(run, now());
        this.ends.get(run)?.();
      },
    });
  }

  static async start(agentsPerDriver: number, opts: { profileDir?: string; env?: Record<string, string>; gatewayEnv?: Record<string, string>; nodeArgs?: { gateway?: string[]; agents?: string[] } } = {}): Promise<Stack> {
    const { profileDir, env = {}, gatewayEnv = {}, nodeArgs = {} } = opts;
    const nats = await NatsServer.start({ monitor: true });
    const profile = (name?: string): { args: string[]; env: Record<string, string> } =>
      profileDir && name ? { args: ['--require', join(__dirname, 'cpu-profile.js')], env: { BENCH_CPU_PROF_DIR: profileDir, BENCH_CPU_PROF_NAME: name } } : { args: [], env: {} };
    const port = await freePort();
    const gp = profile('gateway');
    const gateway = await AppProcess.start('gateway', 'apps/gateway/src/main.js', { CONVEYOR_NATS_URL: nats.url, CONVEYOR_HTTP_PORT: String(port), ...env, ...gatewayEnv, ...gp.env }, 'listening on', 20_000, [...(nodeArgs.gateway ?? []), ...gp.args]);
    const agents: AppProcess[] = [];
    for (let copy = 0; copy < agentsPerDriver; copy++) {
      for (const d of DRIVERS) {
        const ap = profile(copy === 0 && d === DRIVERS[0] ? `agent-${d}` : undefined);
        agents.push(await startTestDriver([d], { CONVEYOR_NATS_URL: nats.url, CONVEYOR_AGENT_ID: `${d}-${copy}`, CONVEYOR_CONCURRENCY: '16', ...env, ...ap.env }, [...(nodeArgs.agents ?? []), ...ap.args]));
      }
    }
    const api = new Api(`http://127.0.0.1:${port}`);
    await api.ok('POST', '/resource-definitions', { name: 'bench', schema: { type: 'object' } });
    await api.ok('POST', '/pipelines', { name: 'noop', resource: 'bench', steps: DRIVERS.map((d, i) => ({ id: `s${i}`, name: d, driver: d })) });
    const nc = await connect({ servers: nats.url, name: BENCH_CONNECTION });
    await nc.flush();
    return new Stack(nats, gateway, agents, api, nc, await jetstreamManager(nc));
  }

  /** The processes whose CPU is Conveyor's: the gateway, each agent, the nats-server. */
  procs(): Proc[] {
    return [
      { name: 'gateway', pid: this.gateway.proc.pid! },
      ...this.agents.map((a) => ({ name: `agent ${a.agentId}`, pid: a.proc.pid! })),
      { name: 'nats-server', pid: this.nats.pid! },
    ];
  }

  /** Counts the NATS messages of the gateway and of all agents (not the bench's own). */
  messageMeter(): MessageMeter {
    return new MessageMeter(this.nats, (name) => (name === BENCH_CONNECTION ? undefined : name === 'conveyor-gateway' ? 'gateway' : 'agents'));
  }

  /** Starts a run of `pipeline` (a resource named `name`); resolves with its id and a promise of its end. */
  async startRun(name: string, pipeline = 'noop', spec: Record<string, unknown> = {}): Promise<{ runid: string; ended: Promise<void> }> {
    const { runid } = await this.api.ok<{ runid: string }>('POST', '/resources', { name, resource: 'bench', pipeline, spec });
    const ended = this.ended.has(runid) ? Promise.resolve() : new Promise<void>((resolve) => this.ends.set(runid, resolve));
    return { runid, ended: ended.then(() => void this.ends.delete(runid)) };
  }

  /**
   * `n` no-op runs started by `lanes` clients side by side, each starting its next run when the
   * gateway answered its last, and at `ratePerSecond` (run i not before i / rate seconds in; 0: as
   * fast as they can); resolves when all have ended (bounded by `timeoutMs`) and the projector has
   * folded every record (its consumer has nothing pending or unacked). `onStarted`: once every run was started.
   */
  async burst(prefix: string, n: number, lanes: number, timeoutMs: number, onStarted?: () => void, ratePerSecond = 0): Promise<string[]> {
    const ids: string[] = [];
    const ends: Promise<void>[] = [];
    const t0 = now();
    const deadline = t0 + timeoutMs;
    await Promise.all(Array.from({ length: lanes }, async (_, lane) => {
      for (let i = lane; i < n; i += lanes) {
        if (now() > deadline) throw new Error(`${prefix}: only ${ids.length} of ${n} runs started in ${timeoutMs} ms`);
        const wait = ratePerSecond > 0 ? t0 + (i * 1000) / ratePerSecond - now() : 0;
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const r = await this.startRun(`${prefix}-${i}`);
        ids.push(r.runid);
        ends.push(r.ended);
      }
    }));
    onStarted?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(ends),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${prefix}: ${ends.length - ids.filter((id) => this.ended.has(id)).length} of ${n} runs had not ended after ${timeoutMs} ms`)), timeoutMs))),
    ]).finally(() => clearTimeout(timer));
    await this.projectorDrained(timeoutMs);
    return ids;
  }

  /** Records in the runs stream, and their stored bytes (subject, headers and data). */
  async runsStream(): Promise<{ messages: number; bytes: number }> {
    const { state } = await this.jsm.streams.info('CONVEYOR_RUNS');
    return { messages: state.messages, bytes: state.bytes };
  }

  async projectorDrained(timeoutMs: number): Promise<void> {
    await waitFor('the projector to fold every record', async () => {
      const c = await this.jsm.consumers.info('CONVEYOR_RUNS', PROJECTOR_CONSUMER);
      return c.num_pending === 0 && c.num_ack_pending === 0 ? true : undefined;
    }, timeoutMs, 50);
  }

  /** Toggles the CPU profiler of the profiled processes (see ./cpu-profile); the second call waits (bounded) for the files. */
  async toggleProfiles(write: boolean): Promise<string[]> {
    const profiled = [this.gateway, this.agents[0]];
    const before = profiled.map((p) => p.logs.length);
    for (const p of profiled) p.signal('SIGWINCH');
    if (!write) return [];
    return waitFor('CPU profiles', () => {
      const files = profiled.map((p, i) => /cpu profile written to (\S+)/.exec(p.logs.slice(before[i]))?.[1]);
      return files.every(Boolean) ? (files as string[]) : undefined;
    }, 30_000, 100);
  }

  async stop(): Promise<void> {
    await this.nc.close().catch(() => undefined);
    await Promise.all(this.agents.map((a) => a.stop('SIGTERM')));
    await this.gateway.stop('SIGTERM');
    await this.nats.dispose();
  }
}
