import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDuration } from '@conveyor/config';
import type { Run } from '@conveyor/contracts';
import { table } from '../bench/stats';
import { NatsCluster } from '../support/nats-cluster';
import { freePort, NatsServer } from '../support/nats-server';
import { AppProcess, startTestDriver } from '../support/processes';
import { analyseJournal, parseJournal, type JournalFigures, type Kill } from './journal';

/**
 * The chaos suite: a whole Conveyor as deployed (a real nats-server or 3-node cluster, the
 * gateway and several test driver agents, each a process of its own) runs a 4-step pipeline
 * many times while processes are killed under it, then judges the outcome only through public
 * interfaces: the HTTP API, the test drivers' journal and process exits. Nothing here reads a
 * NATS subject, stream or bucket, so the suite keeps working when those change.
 *
 * `npm run chaos` (test/chaos/run.ts) and test/e2e/chaos.e2e-spec.ts both call runChaos().
 */

export interface ChaosOptions {
  /** Runs to start (CHAOS_RUNS). */
  runs: number;
  /** Runs started per second at most (CHAOS_RATE). */
  rate: number;
  /** Agent processes, each serving all four test drivers (CHAOS_AGENTS). */
  agents: number;
  /** CONVEYOR_CONCURRENCY of every agent (CHAOS_CONCURRENCY). */
  concurrency: number;
  /** A random agent is SIGKILLed (and restarted) about this often, ±25% (CHAOS_KILL_EVERY). */
  killEveryMs: number;
  /** CONVEYOR_ACK_WAIT of every process. */
  ackWaitMs: number;
  /** How the single nats-server is stopped before it is started again (CHAOS_NATS_SIGNAL). */
  natsSignal: 'SIGKILL' | 'SIGTERM';
  /** On the 3-node cluster (CHAOS_CLUSTER=1): one node is SIGKILLed once and restarted. */
  cluster: boolean;
  /** Cluster: how long the killed node stays down (CHAOS_NODE_DOWN). */
  nodeDownMs: number;
  /** After every run ended, how long to keep watching for late handler entries (CHAOS_SETTLE). */
  settleMs: number;
  /** Seed of the random choices (which agent, jitter) (CHAOS_SEED). */
  seed: number;
  /** Keep the working directory (journal, process logs) even when every target is met (CHAOS_KEEP=1). */
  keep: boolean;
  /** Run the graph pipeline (fan-out to 8, fan-in to 1, a matrix of 4, cleanup) instead of the 4-step line. */
  graph?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
}

export const DEFAULT_OPTIONS: Omit<ChaosOptions, 'seed'> = {
  runs: 1000,
  rate: 20,
  agents: 4,
  concurrency: 8,
  killEveryMs: 2000,
  ackWaitMs: 5000,
  natsSignal: 'SIGKILL',
  cluster: false,
  nodeDownMs: 5000,
  settleMs: 6000,
  keep: false,
};

export function chaosOptionsFromEnv(env: Record<string, string | undefined> = process.env): ChaosOptions {
  const num = (key: string, fallback: number, min = 1): number => {
    const raw = env[key]?.trim();
    if (!raw) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) throw new Error(`${key}=${raw}: expected a number of at least ${min}`);
    return n;
  };
  const dur = (key: string, fallback: number): number => {
    const raw = env[key]?.trim();
    if (!raw) return fallback;
    const ms = parseDuration(raw);
    if (ms === undefined || ms <= 0) throw new Error(`${key}=${raw}: expected a duration such as 500ms, 2s or 1m`);
    return ms;
  };
  const signal = env.CHAOS_NATS_SIGNAL?.trim() || DEFAULT_OPTIONS.natsSignal;
  if (signal !== 'SIGKILL' && signal !== 'SIGTERM') throw new Error(`CHAOS_NATS_SIGNAL=${signal}: SIGKILL or SIGTERM`);
  const ackWaitMs = dur('CONVEYOR_ACK_WAIT', DEFAULT_OPTIONS.ackWaitMs);
  return {
    runs: Math.floor(num('CHAOS_RUNS', DEFAULT_OPTIONS.runs)),
    rate: num('CHAOS_RATE', DEFAULT_OPTIONS.rate, 0.1),
    agents: Math.floor(num('CHAOS_AGENTS', DEFAULT_OPTIONS.agents, 2)),
    concurrency: Math.floor(num('CHAOS_CONCURRENCY', DEFAULT_OPTIONS.concurrency)),
    killEveryMs: dur('CHAOS_KILL_EVERY', DEFAULT_OPTIONS.killEveryMs),
    ackWaitMs,
    natsSignal: signal,
    cluster: env.CHAOS_CLUSTER === '1' || env.CHAOS_CLUSTER === 'true',
    nodeDownMs: dur('CHAOS_NODE_DOWN', DEFAULT_OPTIONS.nodeDownMs),
    settleMs: dur('CHAOS_SETTLE', ackWaitMs + 1000),
    seed: Math.floor(num('CHAOS_SEED', Math.floor(Math.random() * 1e9), 0)),
    keep: env.CHAOS_KEEP === '1' || env.CHAOS_KEEP === 'true',
    graph: env.CHAOS_GRAPH === '1' || env.CHAOS_GRAPH === 'true',
  };
}

/** The four test drivers of the pipeline; every agent serves all of them. */
export const DRIVERS = ['chaos-start', 'chaos-work', 'chaos-check', 'chaos-stop'];
const PIPELINE = 'chaos';
const DEFINITION = 'chaos';

/**
 * The pipeline: four short steps (so kills land mid-step), the second failing its first
 * attempt and retried (so the journal has re-entries that failures explain), the last one a
 * cleanup step that runs whatever happened.
 */
export const PIPELINE_BODY = {
  name: PIPELINE,
  resource: DEFINITION,
  steps: [
    { id: 's1', name: 'start', driver: 'chaos-start', config: { sleepMs: 150 } },
    { id: 's2', name: 'work', driver: 'chaos-work', retries: 1, config: { sleepMs: 200, failTimes: 1 } },
    { id: 's3', name: 'check', driver: 'chaos-check', config: { sleepMs: 100 } },
    { id: 's4', name: 'stop', driver: 'chaos-stop', always: true, config: { sleepMs: 50 } },
  ],
};

/**
 * The graph pipeline (CHAOS_GRAPH=1): a start, a fan-out to 8 steps (one failing its first
 * attempt and retried), a fan-in step that needs all 8, then a matrix of 4 (m-1 … m-4), and a
 * cleanup step that needs them. Kills land on every kind of step; a fan-in that started twice
 * shows in the journal as a step started twice.
 */
export const GRAPH_PIPELINE_BODY = {
  name: PIPELINE,
  resource: DEFINITION,
  steps: [
    { id: 's1', name: 'start', driver: 'chaos-start', config: { sleepMs: 100 } },
    ...Array.from({ length: 8 }, (_, i) => ({
      id: `w${i + 1}`,
      name: `work ${i + 1}`,
      driver: i % 2 ? 'chaos-check' : 'chaos-work',
      needs: ['s1'],
      ...(i === 0 ? { retries: 1, config: { sleepMs: 150, failTimes: 1 } } : { config: { sleepMs: 100 + 20 * i } }),
    })),
    { id: 'join', name: 'join', driver: 'chaos-check', needs: Array.from({ length: 8 }, (_, i) => `w${i + 1}`), config: { sleepMs: 100 } },
    { id: 'm', name: 'shard', driver: 'chaos-work', needs: ['join'], matrix: { shard: [1, 2, 3, 4] }, config: { sleepMs: 120 } },
    { id: 'stop', name: 'stop', driver: 'chaos-stop', needs: ['m'], always: true, config: { sleepMs: 50 } },
  ],
};

export interface Fault {
  kind: 'agent' | 'gateway' | 'nats' | 'nats-node';
  target: string;
  signal: NodeJS.Signals;
  /** ms since the suite started, when the signal was sent. */
  at: number;
  /** ms until the process served again (undefined: not yet, or never). */
  downMs?: number;
}

export interface ChaosFigures {
  runsAsked: number;
  runsStarted: number;
  /** POST /resources that failed (no answer, 5xx) and were sent again under a new name. */
  postRetries: number;
  /** Runs never started: every POST of them failed for 2 minutes. */
  triggersGivenUp: number;
  /** Started runs with no record at the end, or not terminal and never entered by any driver. */
  lost: string[];
  /** Started runs not terminal at the end (and entered by a driver), plus runs the API holds that no POST confirmed, not terminal. */
  stuck: string[];
  /** Of `stuck`: runs whose POST got no 201 (the gateway or NATS died during it). */
  stuckUnconfirmed: string[];
  /** Runs a POST without a 201 made anyway (open ones the API lists, or ones a driver entered). */
  madeAnyway: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  agentKills: number;
  journal: Omit<JournalFigures, 'runsEntered'>;
  /** Started runs not yet seen terminal at the last fault: the backlog the time below includes. */
  openAtLastFault: number;
  /** Seconds from the last fault to the first check that found every started run terminal (undefined: never). */
  secondsToAllTerminal?: number;
  /** Processes that exited although the suite did not kill them: "name (code/signal)". */
  unexpectedExits: string[];
  /** Messages of some failed runs. */
  failedSamples: string[];
  /** Load average (1 min) of the machine when the faults began and when the runs had ended. */
  load: [number, number];
}

export interface ChaosReport {
  options: ChaosOptions;
  figures: ChaosFigures;
  faults: Fault[];
  /** The targets that were missed, one sentence each; empty when all were met. */
  missed: string[];
  /** The working directory, when it was kept. */
  dir?: string;
  /** Total seconds the suite took. */
  seconds: number;
  /** For each missed target, the journal story of a few of the runs behind it, with times. */
  details: string[];
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Everything a running suite must stop when the CLI is interrupted. */
const running = new Set<() => Promise<void>>();

/** Stops whatever a suite in this process still runs (for SIGINT in the CLI). */
export async function stopAllChaos(): Promise<void> {
  await Promise.all([...running].map((stop) => stop().catch(() => undefined)));
}

/** mulberry32: a small seeded generator, so a seed repeats the suite's choices. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs `fn` over `items`, at most `limit` at once. */
async function eachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) await fn(items[i++]);
  }));
}

interface Http {
  status: number;
  body: any;
}

/** A JSON request to the gateway, bounded in time; throws when there is no answer. */
async function request(base: string, method: string, path: string, body?: unknown, timeoutMs = 10_000): Promise<Http> {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed };
}

/** A start-up failure in one line: AppProcess's first line, then the process's first error line. */
function tail(message: string): string {
  const lines = message.split('\n').map((l) => l.trim()).filter(Boolean);
  const error = lines.slice(1).find((l) => /error|timeout|refused/i.test(l) && !l.startsWith('at '));
  return [lines[0], error].filter(Boolean).join(' ').slice(0, 400);
}

/** Tries `fn` until it succeeds, every `everyMs`, for at most `timeoutMs`. */
async function retrying<T>(what: string, fn: () => Promise<T>, timeoutMs: number, everyMs = 500, onError?: (err: Error) => void): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let n = 1; ; n++) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() + everyMs > deadline) throw new Error(`${what}: gave up after ${n} tries: ${(err as Error).message}`);
      onError?.(err as Error);
    }
    await sleep(everyMs);
  }
}

/**
 * Starts the system, runs the pipeline `runs` times under faults, waits for every run to end
 * and judges the outcome. Always stops every process it started.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const opts = options;
  const log = opts.log ?? (() => undefined);
  const began = Date.now();
  const since = () => Date.now() - began;
  const stamp = () => `[${(since() / 1000).toFixed(1).padStart(6)}s]`;
  const say = (line: string) => log(`${stamp()} ${line}`);
  const rnd = random(opts.seed);
  const pick = <T>(items: T[]): T => items[Math.floor(rnd() * items.length)];

  const dir = mkdtempSync(join(tmpdir(), 'conveyor-chaos-'));
  const journal = join(dir, 'journal.log');
  writeFileSync(journal, '');
  const journalSize = () => statSync(journal).size;
  // The journal's size over time: a line's offset then tells roughly when it was written, so a
  // finding can be put beside the faults (the journal lines themselves carry no time).
  const sizes: Array<[number, number]> = [[0, 0]];
  const sampler = setInterval(() => {
    const size = journalSize();
    if (size !== sizes[sizes.length - 1][1]) sizes.push([since(), size]);
  }, 100);
  /** ms since the start by which the line at `offset` had been written. */
  const writtenBy = (offset: number): number => sizes.find(([, size]) => size > offset)?.[0] ?? since();

  const processes: AppProcess[] = [];
  const killedByUs = new Set<AppProcess>();
  const unexpectedExits: string[] = [];
  const kills: Kill[] = [];
  const faults: Fault[] = [];
  let stopping = false;

  /** Notes a process that exits without the suite having killed it. */
  const watch = (p: AppProcess, onUnexpected?: () => void): AppProcess => {
    processes.push(p);
    p.proc.once('exit', (code, signal) => {
      if (stopping || killedByUs.has(p)) return;
      unexpectedExits.push(`${p.agentId ?? p.name} (${signal ?? `exit ${code}`})`);
      say(`${p.agentId ?? p.name} exited on its own (${signal ?? `exit ${code}`})`);
      onUnexpected?.();
    });
    return p;
  };

  let nats: NatsServer | NatsCluster | undefined;
  const stopEverything = async () => {
    stopping = true;
    await Promise.all(processes.map((p) => p.stop('SIGKILL').catch(() => undefined)));
    await nats?.dispose().catch(() => undefined);
  };
  running.add(stopEverything);
  /** Writes every process's output beside the journal, for a look afterwards. */
  const keepLogs = () => {
    mkdirSync(join(dir, 'logs'), { recursive: true });
    processes.forEach((p, i) => writeFileSync(join(dir, 'logs', `${String(i).padStart(3, '0')}-${p.agentId ?? p.name}.log`), p.logs));
  };
  /** Failures of work done in the background (restarts), reported when the faults are over. */
  const backgroundErrors: string[] = [];
  const background = (what: string, p: Promise<void>): Promise<void> =>
    p.catch((err) => {
      backgroundErrors.push(`${what}: ${(err as Error).message.split('\n')[0]}`);
      say(`${what} failed: ${(err as Error).message.split('\n')[0]}`);
    });

  try {
    // --- the system ---------------------------------------------------------------------------
    nats = opts.cluster ? await NatsCluster.start() : await NatsServer.start();
    const natsUrl = nats.url;
    say(`${opts.cluster ? '3-node NATS cluster' : 'nats-server'} on ${natsUrl}`);
    const common: Record<string, string> = {
      CONVEYOR_NATS_URL: natsUrl,
      CONVEYOR_ACK_WAIT: `${opts.ackWaitMs}ms`,
      CONVEYOR_HEARTBEAT_INTERVAL: '1s',
      CONVEYOR_RETRY_BACKOFF: '200ms',
      CONVEYOR_DRAIN_TIMEOUT: '5s',
      ...(opts.cluster ? { CONVEYOR_REPLICAS: '3' } : {}),
    };
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const startGateway = () =>
      retrying('gateway start', () => AppProcess.start('gateway', 'apps/gateway/src/main.js', { ...common, CONVEYOR_HTTP_PORT: String(port), CONVEYOR_HTTP_HOST: '127.0.0.1' }, 'listening on', 30_000), 60_000, 1000, (err) => say(`gateway did not start: ${tail(err.message)}; trying again`));
    const watchGateway = (p: AppProcess): AppProcess =>
      watch(p, () => {
        // Died on its own: a supervisor would start it again.
        void background('gateway restart', startGateway().then((next) => void (gateway = watchGateway(next))));
      });
    let gateway = watchGateway(await startGateway());

    interface Slot { n: number; incarnation: number; proc?: AppProcess; restarting?: Promise<void> }
    const slots: Slot[] = Array.from({ length: opts.agents }, (_, n) => ({ n: n + 1, incarnation: 0 }));
    /** Starts the slot's next agent; each has an id of its own, so the journal tells incarnations apart. */
    const startAgent = async (slot: Slot): Promise<void> => {
      const deadline = Date.now() + 90_000;
      for (;;) {
        const id = `chaos-a${slot.n}-${++slot.incarnation}`;
        try {
          const p = await startTestDriver(DRIVERS, { ...common, CONVEYOR_AGENT_ID: id, CONVEYOR_CONCURRENCY: String(opts.concurrency), TEST_DRIVER_JOURNAL: journal });
          slot.proc = watch(p, () => {
            // Died on its own: its work is redelivered like a killed agent's; start another.
            kills.push({ agent: id, offset: journalSize() });
            if (!slot.restarting) slot.restarting = background(`restart of agent slot ${slot.n}`, startAgent(slot)).finally(() => (slot.restarting = undefined));
          });
          return;
        } catch (err) {
          // A start that did not come up in time was SIGKILLed by AppProcess.start: if it took
          // work before that, the journal must know it died.
          kills.push({ agent: id, offset: journalSize() });
          if (stopping || Date.now() > deadline) throw err;
          say(`agent ${id} did not start: ${tail((err as Error).message)}; trying again`);
          await sleep(1000);
        }
      }
    };
    await Promise.all(slots.map((s) => startAgent(s)));
    say(`gateway on ${base}, ${opts.agents} agents serving ${DRIVERS.join(', ')} (concurrency ${opts.concurrency} each)`);

    await retrying('definition', async () => {
      const r = await request(base, 'POST', '/resource-definitions', { name: DEFINITION, version: '1', schema: { type: 'object' } });
      if (r.status !== 201) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
    }, 10_000);
    await retrying('pipeline', async () => {
      const r = await request(base, 'POST', '/pipelines', opts.graph ? GRAPH_PIPELINE_BODY : PIPELINE_BODY);
      if (r.status !== 201) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
    }, 10_000);

    // --- runs, at a bounded rate ---------------------------------------------------------------
    const started: string[] = [];
    const pending = new Set<string>();
    /** When a poll first saw each run terminal. */
    const endSeenAt = new Map<string, number>();
    let postRetries = 0;
    let givenUp = 0;
    const trigger = async (i: number): Promise<void> => {
      const deadline = Date.now() + 120_000;
      for (let attempt = 0; ; attempt++) {
        const name = attempt === 0 ? `c-${i}` : `c-${i}-r${attempt}`;
        let outcome: string;
        try {
          const r = await request(base, 'POST', '/resources', { name, resource: DEFINITION, pipeline: PIPELINE, spec: {} }, 15_000);
          if (r.status === 201 && typeof r.body?.runid === 'string') {
            started.push(r.body.runid);
            pending.add(r.body.runid);
            return;
          }
          outcome = `${r.status} ${JSON.stringify(r.body).slice(0, 200)}`;
          if (r.status < 500) {
            // Nothing a chaos run sends is bad input: a 4xx is a finding, not a reason to retry.
            say(`POST /resources ${name}: ${outcome}; not retried`);
            givenUp += 1;
            return;
          }
        } catch (err) {
          outcome = (err as Error).message;
        }
        postRetries += 1;
        if (Date.now() > deadline || stopping) {
          say(`run ${i} never started: last answer ${outcome}`);
          givenUp += 1;
          return;
        }
        await sleep(250);
      }
    };
    const intervalMs = 1000 / opts.rate;
    const triggering = (async () => {
      const inFlight = new Set<Promise<void>>();
      let next = Date.now();
      for (let i = 0; i < opts.runs && !stopping; i++) {
        while (inFlight.size >= 8) await Promise.race(inFlight);
        const wait = next - Date.now();
        if (wait > 0) await sleep(wait);
        // No catching up after a stall: the rate stays bounded.
        next = Math.max(next, Date.now()) + intervalMs;
        const p: Promise<void> = trigger(i).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await Promise.all(inFlight);
    })();
    let triggered = false;
    void triggering.then(() => (triggered = true), () => (triggered = true));

    // --- watching runs end, as a user would --------------------------------------------------
    /** Non-terminal runs of the pipeline the API holds that no POST confirmed (a POST cut off mid-way). */
    const unconfirmedOpen = async (): Promise<string[]> => {
      const known = new Set(started);
      const open: string[] = [];
      for (const status of ['queued', 'running']) {
        const r = await request(base, 'GET', `/runs?pipeline=${PIPELINE}&status=${status}&limit=500`, undefined, 30_000);
        if (r.status !== 200) throw new Error(`GET /runs: ${r.status}`);
        for (const run of r.body as Run[]) if (!known.has(run.id)) open.push(run.id);
      }
      return open;
    };
    const pollOnce = async (): Promise<void> => {
      await eachLimit([...pending], 8, async (id) => {
        try {
          const r = await request(base, 'GET', `/runs/${id}`);
          if (r.status === 200 && TERMINAL.has((r.body as Run).status)) {
            pending.delete(id);
            endSeenAt.set(id, since());
          }
        } catch {
          // the gateway is down: next round
        }
      });
    };
    let polling = true;
    const poller = (async () => {
      while (polling) {
        await pollOnce();
        await sleep(500);
      }
    })();

    // --- faults ------------------------------------------------------------------------------
    const plannedMs = (opts.runs / opts.rate) * 1000;
    const faultStart = Date.now();
    const loadAtFaults = loadavg()[0];
    const jitter = () => opts.killEveryMs * (0.75 + rnd() * 0.5);
    const killAgent = async (): Promise<void> => {
      const alive = slots.filter((s) => s.proc?.alive && !s.restarting);
      // Never all at once: at least one agent keeps serving.
      if (alive.length < 2) return;
      const slot = pick(alive);
      const victim = slot.proc!;
      const offset = journalSize();
      killedByUs.add(victim);
      const fault: Fault = { kind: 'agent', target: victim.agentId!, signal: 'SIGKILL', at: since() };
      faults.push(fault);
      await victim.stop('SIGKILL');
      kills.push({ agent: victim.agentId!, offset });
      const t0 = Date.now();
      slot.restarting = background(`restart of agent slot ${slot.n}`, startAgent(slot).then(() => void (fault.downMs = Date.now() - t0)))
        .finally(() => (slot.restarting = undefined));
    };
    const killGateway = async (): Promise<void> => {
      const fault: Fault = { kind: 'gateway', target: 'gateway', signal: 'SIGKILL', at: since() };
      faults.push(fault);
      killedByUs.add(gateway);
      await gateway.stop('SIGKILL');
      say('gateway SIGKILLed; starting it again');
      gateway = watchGateway(await startGateway());
      fault.downMs = since() - fault.at;
      say(`gateway back after ${(fault.downMs / 1000).toFixed(1)}s`);
    };
    const natsFault = async (): Promise<void> => {
      if (nats instanceof NatsCluster) {
        const cluster = nats;
        const i = Math.floor(rnd() * cluster.nodes.length);
        const fault: Fault = { kind: 'nats-node', target: cluster.nodes[i].name, signal: 'SIGKILL', at: since() };
        faults.push(fault);
        await cluster.kill(i, 'SIGKILL');
        say(`NATS node ${cluster.nodes[i].name} SIGKILLed; restarting it in ${opts.nodeDownMs / 1000}s`);
        await sleep(opts.nodeDownMs);
        await cluster.restart(i);
        fault.downMs = since() - fault.at;
        say(`NATS node ${cluster.nodes[i].name} back after ${(fault.downMs / 1000).toFixed(1)}s`);
      } else {
        const server = nats as NatsServer;
        const fault: Fault = { kind: 'nats', target: 'nats-server', signal: opts.natsSignal, at: since() };
        faults.push(fault);
        await server.restart(opts.natsSignal);
        fault.downMs = since() - fault.at;
        say(`nats-server ${opts.natsSignal}ed and started again on the same port and store: down ${(fault.downMs / 1000).toFixed(1)}s`);
      }
    };

    say(`starting ${opts.runs} runs at ${opts.rate}/s; faults for about ${(plannedMs / 1000).toFixed(0)}s (seed ${opts.seed})`);
    const oneOffs: Promise<void>[] = [];
    let gatewayDone = false;
    let natsDone = false;
    let nextKill = Date.now() + jitter();
    const faultsBound = faultStart + plannedMs + 300_000;
    while (Date.now() < faultsBound) {
      const elapsed = Date.now() - faultStart;
      if (!gatewayDone && elapsed >= plannedMs * 0.3) {
        gatewayDone = true;
        oneOffs.push(background('gateway kill and restart', killGateway()));
      }
      if (!natsDone && elapsed >= plannedMs * 0.6) {
        natsDone = true;
        oneOffs.push(background('NATS fault and restart', natsFault()));
      }
      if (Date.now() >= nextKill) {
        await killAgent();
        nextKill = Date.now() + jitter();
      }
      if (triggered && gatewayDone && natsDone && elapsed >= plannedMs) break;
      await sleep(50);
    }
    await Promise.all(oneOffs);
    await triggering;
    const lastFault = Math.max(...faults.map((f) => f.at));
    const agentKills = faults.filter((f) => f.kind === 'agent').length;
    const openAtLastFault = started.filter((id) => !endSeenAt.has(id) || endSeenAt.get(id)! > lastFault).length;
    say(`faults over: ${agentKills} agent kills, last fault at ${(lastFault / 1000).toFixed(1)}s; ${started.length} runs started, ${pending.size} not ended yet`);
    await Promise.all(slots.map((s) => s.restarting));
    if (backgroundErrors.length) throw new Error(`the system could not be brought back: ${backgroundErrors.join('; ')}`);
    polling = false;
    await poller;

    // --- every run terminal? (bounded: last fault + ack wait + 60 s) ---------------------------
    // The time figure is for the runs started (201). Runs a cut-off POST made anyway are
    // waited for until the target's bound (last fault + ack wait + 10 s) at most: still open
    // then, they are counted stuck.
    const target = began + lastFault + opts.ackWaitMs + 10_000;
    let waitUntil = began + lastFault + opts.ackWaitMs + 60_000;
    let allTerminalAt: number | undefined;
    let unconfirmedLeft: string[] = [];
    while (Date.now() < waitUntil) {
      await pollOnce();
      if (pending.size === 0) {
        if (allTerminalAt === undefined) {
          allTerminalAt = since();
          waitUntil = Math.max(Date.now(), target);
        }
        unconfirmedLeft = await unconfirmedOpen().catch(() => ['?']);
        if (unconfirmedLeft.length === 0) break;
      }
      await sleep(250);
    }
    if (allTerminalAt !== undefined) {
      say(`every run started was terminal ${((allTerminalAt - lastFault) / 1000).toFixed(1)}s after the last fault${unconfirmedLeft.length ? `; ${unconfirmedLeft.length} run(s) no POST confirmed are not` : ''}; watching for late entries for ${opts.settleMs / 1000}s`);
    } else {
      say(`not every run ended by the bound (${pending.size} started runs still open)`);
    }
    await sleep(allTerminalAt !== undefined ? opts.settleMs : 0);

    // --- the final state, through the API ------------------------------------------------------
    const finals = new Map<string, Run | null>();
    await eachLimit(started, 16, async (id) => {
      const r = await retrying(`GET /runs/${id}`, () => request(base, 'GET', `/runs/${id}`), 30_000);
      finals.set(id, r.status === 200 ? (r.body as Run) : null);
    });
    const unconfirmed = await retrying('GET /runs', unconfirmedOpen, 30_000);
    const text = readFileSync(journal, 'utf8');
    const lines = parseJournal(text);
    const j = analyseJournal(lines, kills);
    // Runs that a POST without a 201 made anyway: the open ones the API lists, and those the
    // journal saw a driver enter.
    const confirmed = new Set(started);
    const madeAnyway = [...new Set([...unconfirmed, ...[...j.runsEntered].filter((id) => !confirmed.has(id))])];
    for (const id of madeAnyway.slice(0, 50)) {
      const r = await request(base, 'GET', `/runs/${id}`).catch(() => undefined);
      if (r?.status === 200) finals.set(id, r.body as Run);
    }
    const loadAtEnd = loadavg()[0];
    stopping = true;
    await stopEverything();
    clearInterval(sampler);
    const lost: string[] = [];
    const stuck: string[] = [];
    let succeeded = 0;
    let failed = 0;
    let cancelled = 0;
    const failedSamples: string[] = [];
    for (const id of started) {
      const run = finals.get(id);
      if (!run) lost.push(id);
      else if (!TERMINAL.has(run.status)) (j.runsEntered.has(id) ? stuck : lost).push(id);
      else if (run.status === 'succeeded') succeeded += 1;
      else if (run.status === 'cancelled') cancelled += 1;
      else {
        failed += 1;
        if (failedSamples.length < 5) {
          // How often the journal saw each step entered, beside the attempts the run record counts.
          const entries = run.steps.map((st) => `${st.id} ${st.status}, ${st.attempts} attempt(s), ${lines.filter((l) => l.run === id && l.step === st.id && l.what === 'start').length} entered`);
          failedSamples.push(`${id}: ${run.message ?? ''} [${entries.join('; ')}]`);
        }
      }
    }
    const { runsEntered: _entered, ...journalFigures } = j;
    const figures: ChaosFigures = {
      runsAsked: opts.runs,
      runsStarted: started.length,
      postRetries,
      triggersGivenUp: givenUp,
      lost,
      stuck: [...stuck, ...unconfirmed],
      stuckUnconfirmed: unconfirmed,
      madeAnyway: madeAnyway.length,
      succeeded,
      failed,
      cancelled,
      agentKills,
      journal: journalFigures,
      openAtLastFault,
      secondsToAllTerminal: allTerminalAt === undefined ? undefined : (allTerminalAt - lastFault) / 1000,
      unexpectedExits,
      failedSamples,
      load: [loadAtFaults, loadAtEnd],
    };
    const missed = judge(figures, opts);
    // The stories behind missed targets: each run's journal lines with the time they were
    // written by, and the faults around them.
    const story = (run: string, why: string): string => {
      const own = lines.filter((l) => l.run === run);
      const status = finals.get(run);
      // The record's creation time (wall clock, as the API shows it) anchors a run no driver entered.
      const created = status ? Date.parse(status.createdAt) - began : undefined;
      const from = (created ?? (own.length ? writtenBy(own[0].offset) : 0)) - 5000;
      const to = own.length ? writtenBy(own[own.length - 1].offset) + 1000 : created !== undefined ? created + 2000 : since();
      const near = faults.filter((f) => f.at >= from && f.at <= to).map((f) => `${f.target} ${f.signal} at ${(f.at / 1000).toFixed(1)}s`);
      return [
        `run ${run} (${why}; ${status ? `${status.status}${status.message ? `: ${status.message}` : ''}` : 'no record'}${created !== undefined ? `, created at ${(created / 1000).toFixed(1)}s` : ''}${endSeenAt.has(run) ? `, seen terminal at ${(endSeenAt.get(run)! / 1000).toFixed(1)}s` : ''}):`,
        ...own.map((l) => `    by ${(writtenBy(l.offset) / 1000).toFixed(1).padStart(6)}s  ${l.step} attempt ${l.attempt} on ${l.agent}: ${l.what}${l.outcome ? ` ${l.outcome}` : ''}${kills.some((k) => k.agent === l.agent) ? ` (agent killed by ${(writtenBy(kills.find((k) => k.agent === l.agent)!.offset) / 1000).toFixed(1)}s)` : ''}`),
        `    faults around it: ${near.join(', ') || 'none'}`,
      ].join('\n');
    };
    const details: string[] = [];
    const runOf = (pair: string) => pair.split(' ')[0];
    // One line for each step run twice: when it first succeeded and when it was entered again.
    const twice = [...new Set([...j.startedTwice, ...j.completedTwiceUnexplained])];
    if (twice.length) {
      details.push(`steps run twice (first successful end, then the next entry; times written by):`);
      for (const pair of twice.slice(0, 20)) {
        const [run, step] = pair.split(' ');
        const own = lines.filter((l) => l.run === run && l.step === step);
        const ok = own.find((l) => l.what === 'end' && l.outcome === 'ok');
        const again = ok && own.find((l) => l.what === 'start' && l.offset > ok.offset);
        const at = (l?: { offset: number }) => (l ? `${(writtenBy(l.offset) / 1000).toFixed(1)}s` : '-');
        details.push(`  ${pair}: ${ok ? `attempt ${ok.attempt} ended ok on ${ok.agent} by ${at(ok)}` : 'no successful end before'}${again ? `, attempt ${again.attempt} entered on ${again.agent} by ${at(again)}` : ''}`);
      }
    }
    for (const pair of j.startedTwice.slice(0, 3)) details.push(story(runOf(pair), `step ${pair.split(' ')[1]} started twice`));
    for (const pair of j.completedTwiceUnexplained.slice(0, 3)) {
      if (!j.startedTwice.includes(pair)) details.push(story(runOf(pair), `step ${pair.split(' ')[1]} completed twice`));
    }
    for (const run of [...lost, ...figures.stuck].slice(0, 3)) {
      details.push(story(run, lost.includes(run) ? 'lost' : unconfirmed.includes(run) ? 'stuck; no POST confirmed it' : 'stuck'));
    }
    if (figures.secondsToAllTerminal !== undefined && figures.secondsToAllTerminal > opts.ackWaitMs / 1000 + 10) {
      const last = [...endSeenAt].sort((a, b) => b[1] - a[1]).slice(0, 3);
      for (const [run] of last) details.push(story(run, 'among the last to end'));
    }
    const report: ChaosReport = { options: opts, figures, faults, missed, seconds: since() / 1000, details };
    // Kept for a look afterwards: the journal, every process's output, the report.
    if (missed.length || opts.keep) {
      keepLogs();
      writeFileSync(join(dir, 'report.json'), JSON.stringify({ ...report, options: { ...opts, log: undefined } }, null, 2));
      report.dir = dir;
    } else {
      rmSync(dir, { recursive: true, force: true });
    }
    return report;
  } catch (err) {
    clearInterval(sampler);
    await stopEverything();
    keepLogs();
    throw new Error(`${(err as Error).message}\n(journal and process logs kept in ${dir})`);
  } finally {
    clearInterval(sampler);
    await stopEverything();
    running.delete(stopEverything);
  }
}

/** The targets; each missed one is a sentence. */
export function judge(f: ChaosFigures, opts: Pick<ChaosOptions, 'ackWaitMs'>): string[] {
  const missed: string[] = [];
  const bound = opts.ackWaitMs / 1000 + 10;
  if (f.lost.length) missed.push(`${f.lost.length} run(s) lost: ${f.lost.slice(0, 5).join(', ')}`);
  if (f.stuck.length) missed.push(`${f.stuck.length} run(s) stuck (not terminal at the end): ${f.stuck.slice(0, 5).join(', ')}`);
  if (f.journal.startedTwice.length) missed.push(`${f.journal.startedTwice.length} step(s) started twice without a failure to explain it: ${f.journal.startedTwice.slice(0, 5).join(', ')}`);
  if (f.journal.completedTwiceUnexplained.length) missed.push(`${f.journal.completedTwiceUnexplained.length} step(s) completed twice without a kill to explain it: ${f.journal.completedTwiceUnexplained.slice(0, 5).join(', ')}`);
  if (f.secondsToAllTerminal === undefined) missed.push('not every run started was terminal by the bound (last fault + ack wait + 60 s)');
  else if (f.secondsToAllTerminal > bound) missed.push(`every run started was terminal only ${f.secondsToAllTerminal.toFixed(1)} s after the last fault (target ${bound} s: ack wait + 10 s)`);
  return missed;
}

/** The report as the CLI prints it. */
export function formatReport(r: ChaosReport): string {
  const { figures: f, options: o } = r;
  const j = f.journal;
  const sec = (ms?: number) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)}s`);
  const oneOff = r.faults.filter((x) => x.kind !== 'agent').map((x) => `${x.target} ${x.signal} at ${sec(x.at)} (back after ${sec(x.downMs)})`);
  const lastFault = r.faults.length ? Math.max(...r.faults.map((x) => x.at)) : undefined;
  const bound = o.ackWaitMs / 1000 + 10;
  const rows = [
    ['figure', 'value', 'target'],
    ['runs started (POST /resources answered 201)', `${f.runsStarted} of ${f.runsAsked}`, '-'],
    ['  POSTs without an answer or with a 5xx, sent again', String(f.postRetries), '-'],
    ['  runs such a POST made anyway (API or journal)', String(f.madeAnyway), '-'],
    ['  runs never started (POSTs failed for 2 minutes, or a 4xx)', String(f.triggersGivenUp), '-'],
    ['lost (no record, or never reached a driver and not terminal)', String(f.lost.length), '0'],
    ['stuck (not terminal at the end)', String(f.stuck.length), '0'],
    ['  of which the API holds but no POST confirmed', String(f.stuckUnconfirmed.length), '-'],
    ['succeeded / failed / cancelled', `${f.succeeded} / ${f.failed} / ${f.cancelled}`, '-'],
    ['handler entries / successful returns (journal)', `${j.starts} / ${j.completions}`, '-'],
    ['  entered again after a failed attempt (retry)', String(j.reentriesAfterFailure), '-'],
    ['  entered again after its agent was killed', String(j.reentriesAfterKill), '-'],
    ['next steps started twice (no failure explains it)', String(j.startedTwice.length), '0'],
    ['steps completed twice (>1 successful end)', String(j.completedTwice.length), '-'],
    ['  explained: first completer killed right after returning', String(j.completedTwiceAfterKill.length), '-'],
    ['  unexplained', String(j.completedTwiceUnexplained.length), '0'],
    ['runs not seen terminal by the last fault', String(f.openAtLastFault), '-'],
    ['seconds from the last fault to all started runs terminal', f.secondsToAllTerminal === undefined ? 'never' : f.secondsToAllTerminal.toFixed(1), `<= ${bound} (ack wait + 10 s)`],
    ['processes that exited on their own', String(f.unexpectedExits.length), '-'],
  ];
  const lines = [
    `Conveyor chaos suite: ${f.runsAsked} runs of the ${o.graph ? '15-step graph' : '4-step'} pipeline at ${o.rate}/s on ${o.cluster ? 'a 3-node NATS cluster' : 'one nats-server'}, ${o.agents} agents x ${DRIVERS.length} drivers (concurrency ${o.concurrency}), ack wait ${o.ackWaitMs / 1000}s, seed ${o.seed}`,
    `load average (1 min) ${f.load[0].toFixed(1)} when the faults began, ${f.load[1].toFixed(1)} when the runs had ended (${cpus().length} cores)`,
    `faults: ${f.agentKills} agent SIGKILLs (about every ${o.killEveryMs / 1000}s, each restarted), ${oneOff.join(', ') || 'no others'}; last fault at ${sec(lastFault)}; ${r.seconds.toFixed(0)}s in all`,
    '',
    table(rows),
    '',
  ];
  if (f.failedSamples.length) lines.push(`failed runs (first ${f.failedSamples.length}):`, ...f.failedSamples.map((s) => `  ${s}`), '');
  if (f.unexpectedExits.length) lines.push(`exited on their own: ${f.unexpectedExits.join(', ')}`, '');
  if (r.details.length) lines.push('what the journal says about them (times: written by, since the suite started):', ...r.details, '');
  if (r.missed.length) lines.push('TARGETS MISSED:', ...r.missed.map((m) => `  - ${m}`));
  else lines.push('all targets met');
  if (r.dir) lines.push(`journal, process logs and report kept in ${r.dir}`);
  return lines.join('\n');
}
