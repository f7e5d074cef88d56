import { jetstream, StorageType } from '@nats-io/jetstream';
import { Kvm, KvWatchInclude } from '@nats-io/kv';
import { loadConfig } from '@conveyor/config';
import { newRunId, PROJECTOR_CONSUMER, Subjects, type Run } from '@conveyor/contracts';
import { RunIndex } from '@conveyor/store';
import { readSse } from '../support/api';
import { monotonicMs as now } from '../drivers/behaviours';
import { CpuMeter, rssBytes } from './cpu';
import { frameworkFloorRss } from './framework-floor';
import { DRIVERS, Stack } from './stack';
import { summary } from './stats';

/**
 * BENCH_SCALE=1 (`npm run bench:scale`): Conveyor at scale, on a stack of its own with
 * AGENTS agents per driver.
 *  - RUNS no-op 4-step runs started in a burst (64 clients): time until all ended and were
 *    folded, the work waiting sampled every second, projector lag (a run's end record on the
 *    wire -> its run record ended, from a watch of the runs bucket), RSS before, right after
 *    and SETTLE_S idle seconds after (the agents' beside an empty Nest microservice's, the
 *    floor their frameworks set: ./framework-floor), and the CPU per run of the gateway and of the agents;
 *  - `GET /runs?limit=50` with a tenth of STORED and with STORED run records in the bucket (the
 *    runs above, and copies of one of them under new ids: real runs would take too long);
 *  - FOLLOWERS SSE followers of one run's log while a step prints LINES lines: each must get
 *    every line, in order; lines/s against a raw publish of the same lines (FOLLOWERS=0: not run).
 * Each part is bounded by TIMEOUT_MS.
 */
const RUNS = Number(process.env.BENCH_SCALE_RUNS ?? 10_000);
const AGENTS = Number(process.env.BENCH_SCALE_AGENTS ?? 8);
const STORED = Number(process.env.BENCH_SCALE_STORED ?? 100_000);
const FOLLOWERS = Number(process.env.BENCH_SCALE_FOLLOWERS ?? 200);
const LINES = Number(process.env.BENCH_SCALE_LINES ?? 100_000);
const TIMEOUT_MS = Number(process.env.BENCH_SCALE_TIMEOUT_S ?? 1_800) * 1000;
/**
 * How long the stack sits idle after the burst while its RSS is read (every 10 s): whether, and
 * when, what a burst grew is given back. V8's memory reducer gives it back on its own about
 * 70-100 s after the burst's last GC (`node --trace-gc`: a "Mark-Compact (reduce)"), so the
 * default watches past that.
 */
const SETTLE_S = Number(process.env.BENCH_SCALE_SETTLE_S ?? 150);
const LANES = 64;
/**
 * node's own options for the gateway and for every agent (space-separated), to measure a tuning
 * of V8's heap against the defaults: BENCH_SCALE_GATEWAY_NODE_ARGS, BENCH_SCALE_AGENT_NODE_ARGS.
 */
const NODE_ARGS = {
  gateway: (process.env.BENCH_SCALE_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean),
  agents: (process.env.BENCH_SCALE_AGENT_NODE_ARGS ?? '').split(' ').filter(Boolean),
};
const LIST_REQUESTS = 200;
/** Lines in flight of the raw publisher: the window of libs/logs' writer. */
const LOG_WINDOW = 512;

const isEnded = (status: string) => status !== 'queued' && status !== 'running';
const mb = (bytes: number) => (bytes / 1e6).toFixed(0);

export async function benchScale(): Promise<string[][]> {
  const stack = await Stack.start(AGENTS, { gatewayEnv: { CONVEYOR_SSE_MAX_PER_RUN: String(FOLLOWERS + 10) }, nodeArgs: NODE_ARGS });
  try {
    const rows = await burst(stack);
    rows.push(...(await listing(stack)));
    if (FOLLOWERS > 0) rows.push(...(await followers(stack)));
    return rows;
  } finally {
    await stack.stop();
  }
}

function memory(stack: Stack): { gateway: number; agentsMax: number; agentsSum: number } {
  const agents = stack.agents.map((a) => rssBytes(a.proc.pid!));
  return { gateway: rssBytes(stack.gateway.proc.pid!), agentsMax: Math.max(...agents), agentsSum: agents.reduce((s, b) => s + b, 0) };
}

/** At most `points` values: the largest of each stretch of the series. */
function compact(series: number[], points = 40): { step: number; values: number[] } {
  const step = Math.max(1, Math.ceil(series.length / points));
  const values: number[] = [];
  for (let i = 0; i < series.length; i += step) values.push(Math.max(...series.slice(i, i + step)));
  return { step, values };
}

async function burst(stack: Stack): Promise<string[][]> {
  const before = memory(stack);
  // The agents' baseline: Nest, rxjs and the NATS client in a process of their own, no Conveyor code.
  const floor = await frameworkFloorRss(stack.nats.url);
  // When each run's record first shows it ended (updates only, from now on).
  const kvm = new Kvm(stack.nc);
  const kv = await kvm.open('conveyor-runs');
  // Each copy gets its run-index entry first, as RunsStore.create stores a run.
  const index = new RunIndex({ nc: stack.nc, js: jetstream(stack.nc), jsm: stack.jsm, kvm, subjects: new Subjects(), config: loadConfig() });
  const recordEnded = new Map<string, number>();
  const statuses = new Map<string, string>();
  const watch = await kv.watch({ include: KvWatchInclude.UpdatesOnly, ignoreDeletes: true });
  const watching = (async () => {
    for await (const e of watch) {
      if (e.operation !== 'PUT' || recordEnded.has(e.key)) continue;
      const run = e.json<Run>();
      if (isEnded(run.status)) {
        recordEnded.set(e.key, now());
        statuses.set(e.key, run.status);
      }
    }
  })();
  // The work waiting for agents (pending + unacked of the four drivers' consumers) and the
  // records waiting for the projector, every second.
  const waiting: number[] = [];
  const folding: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    for (let i = 0; sampling && i < TIMEOUT_MS / 1000 + 60; i++) {
      const infos = await Promise.all(DRIVERS.map((d) => stack.jsm.consumers.info('CONVEYOR_RUNS', d).catch(() => undefined)));
      waiting.push(infos.reduce((s, c) => s + (c ? c.num_pending + c.num_ack_pending : 0), 0));
      const p = await stack.jsm.consumers.info('CONVEYOR_RUNS', PROJECTOR_CONSUMER);
      folding.push(p.num_pending + p.num_ack_pending);
      await new Promise((r) => setTimeout(r, 1_000));
    }
  })();
  const cpu = new CpuMeter(stack.procs()).start();
  const t0 = now();
  let ids: string[];
  let startSeconds = 0;
  try {
    ids = await stack.burst('scale', RUNS, LANES, TIMEOUT_MS, () => (startSeconds = (now() - t0) / 1000));
  } finally {
    sampling = false;
  }
  const drainSeconds = (now() - t0) / 1000;
  const used = cpu.stop();
  await sampler;
  // The last records' watch entries may trail the projector's ack by a moment (bounded).
  for (let i = 0; i < 100 && ids.some((id) => !recordEnded.has(id)); i++) await new Promise((r) => setTimeout(r, 50));
  watch.stop();
  await watching;
  const after = memory(stack);
  // Idle, as a stack is between bursts: read every 10 s; the largest reading of the last 10 s counts.
  const idle: ReturnType<typeof memory>[] = [];
  const settled: ReturnType<typeof memory>[] = [];
  for (let i = 1; i <= SETTLE_S; i++) {
    await new Promise((r) => setTimeout(r, 1_000));
    if (i % 10 === 0) idle.push(memory(stack));
    if (i > SETTLE_S - 10) settled.push(memory(stack));
  }
  const rest = settled.length
    ? { gateway: Math.max(...settled.map((m) => m.gateway)), agentsMax: Math.max(...settled.map((m) => m.agentsMax)), agentsSum: Math.max(...settled.map((m) => m.agentsSum)) }
    : after;
  const series = (pick: (m: ReturnType<typeof memory>) => number) => idle.map((m) => mb(pick(m))).join(' ');
  const msPerRun = (name: string) => (used.perProcess.filter((p) => p.name.startsWith(name)).reduce((sum, p) => sum + p.seconds, 0) * 1000) / RUNS;
  const tuned = [NODE_ARGS.gateway.length ? `gateway: node ${NODE_ARGS.gateway.join(' ')}` : '', NODE_ARGS.agents.length ? `agents: node ${NODE_ARGS.agents.join(' ')}` : ''].filter(Boolean).join('; ') || "node's defaults";
  const lags = ids.filter((id) => recordEnded.has(id) && stack.ended.has(id)).map((id) => recordEnded.get(id)! - stack.ended.get(id)!);
  const lag = summary(lags);
  const succeeded = ids.filter((id) => statuses.get(id) === 'succeeded').length;
  const w = compact(waiting);
  const f = compact(folding);
  return [
    [`scale: ${RUNS} no-op runs in a burst, ${AGENTS} agents per driver: time to drain (s)`, drainSeconds.toFixed(1), '-', `${succeeded}/${RUNS} succeeded; all started after ${startSeconds.toFixed(1)} s (${LANES} clients); ${(RUNS / drainSeconds).toFixed(1)} runs/s`],
    [`scale: work waiting, every ${w.step} s (the largest)`, w.values.join(' '), '-', `pending + unacked of the ${DRIVERS.length} drivers' consumers`],
    [`scale: records waiting for the projector, every ${f.step} s`, f.values.join(' '), '-', 'pending + unacked of its consumer'],
    ['scale: projector lag p50 / p99 (ms)', `${lag.median.toFixed(0)} / ${lag.p99.toFixed(0)}`, '-', `end record on the wire -> run record ended (runs bucket watch), ${lag.n} runs`],
    ['scale: CPU per run during the burst (ms): gateway / all agents / nats-server', `${msPerRun('gateway').toFixed(2)} / ${msPerRun('agent').toFixed(2)} / ${msPerRun('nats-server').toFixed(2)}`, '-', `user+system from the first start until all ended; ${tuned}`],
    [`scale: gateway RSS before / after / ${SETTLE_S} s idle after (MB)`, `${mb(before.gateway)} / ${mb(after.gateway)} / ${mb(rest.gateway)}`, '-', `${tuned}; the idle figure is the largest of its last 10 s`],
    [`scale: agent RSS, largest before / after / ${SETTLE_S} s idle after (MB)`, `${mb(before.agentsMax)} / ${mb(after.agentsMax)} / ${mb(rest.agentsMax)}`, mb(floor), `all ${stack.agents.length} agents: ${mb(before.agentsSum)} / ${mb(after.agentsSum)} / ${mb(rest.agentsSum)} MB; the baseline: an empty Nest microservice connected to NATS (./framework-floor), idle, read before the burst`],
    ['scale: RSS while idle after the burst, every 10 s (MB)', `gateway ${series((m) => m.gateway)}`, '-', `largest agent ${series((m) => m.agentsMax)}`],
  ];
}

/**
 * `GET /runs?limit=50` with a tenth of STORED, then STORED records in the runs bucket: the real
 * runs so far, and copies of the newest real one under new run ids, each stored as
 * RunsStore.create stores a run (its run-index entry, then its record; 100,000 real runs would
 * take this machine over 20 minutes). The first is the baseline: a page should cost the same.
 */
async function listing(stack: Stack): Promise<string[][]> {
  const kvm = new Kvm(stack.nc);
  const kv = await kvm.open('conveyor-runs');
  const index = new RunIndex({ nc: stack.nc, js: jetstream(stack.nc), jsm: stack.jsm, kvm, subjects: new Subjects(), config: loadConfig() });
  const [template] = await stack.api.ok<Run[]>('GET', '/runs?limit=1');
  const real = (await kv.status()).values;
  const fill = async (upTo: number): Promise<number> => {
    const t0 = now();
    const window = new Set<Promise<unknown>>();
    // Times spread over the past day (ids sort among and before the real ones; listed in the order stored).
    const dayMs = 86_400_000;
    for (let stored = (await kv.status()).values; stored < upTo; stored++) {
      if (now() - t0 > TIMEOUT_MS) throw new Error(`listing: ${stored} of ${upTo} runs stored after ${TIMEOUT_MS} ms`);
      const id = newRunId(Date.now() - Math.floor(Math.random() * dayMs));
      const p: Promise<unknown> = index.add(id).then(() => kv.put(id, JSON.stringify({ ...template, id }))).finally(() => window.delete(p));
      window.add(p);
      if (window.size >= 256) await Promise.race(window);
    }
    await Promise.all(window);
    return (now() - t0) / 1000;
  };
  const pages = async () => {
    const times: number[] = [];
    const deadline = now() + TIMEOUT_MS;
    for (let i = 0; i < LIST_REQUESTS && now() < deadline; i++) {
      const t = now();
      const page = await stack.api.ok<Run[]>('GET', '/runs?limit=50');
      times.push(now() - t);
      if (page.length !== 50) throw new Error(`GET /runs?limit=50 answered ${page.length} runs`);
    }
    return summary(times);
  };
  const fewer = Math.max(real, Math.round(STORED / 10));
  const fewerSeconds = await fill(fewer);
  const base = await pages();
  const moreSeconds = await fill(STORED);
  const s = await pages();
  return [[
    `scale: GET /runs?limit=50 p50 / p99 (ms), ${STORED} runs stored`,
    `${s.median.toFixed(1)} / ${s.p99.toFixed(1)}`,
    `${base.median.toFixed(1)} / ${base.p99.toFixed(1)}`,
    `${(s.median / base.median).toFixed(2)}x the p50 with ${fewer} stored (the baseline column); ${real} real runs, the rest copies of one (${(fewerSeconds + moreSeconds).toFixed(0)} s to store); ${s.n} requests one after another each`,
  ]];
}

interface Follower { lines: number; inOrder: boolean; first?: number; last?: number }

/**
 * FOLLOWERS clients follow one run's log (`GET /logs/pipeline/:runid`) while its second step
 * prints LINES lines; the first step waits long enough for all of them to connect.
 */
async function followers(stack: Stack): Promise<string[][]> {
  const waitMs = 10_000 + 50 * FOLLOWERS;
  await stack.api.ok('POST', '/pipelines', {
    name: 'lines',
    resource: 'bench',
    steps: [
      { id: 'wait', name: 'wait', driver: DRIVERS[0], config: { sleepMs: waitMs } },
      { id: 'print', name: 'print', driver: DRIVERS[1], config: { lines: LINES } },
    ],
  });
  const { runid, ended } = await stack.startRun('followed', 'lines');
  const got: Follower[] = Array.from({ length: FOLLOWERS }, () => ({ lines: 0, inOrder: true }));
  const reading = got.map((f) =>
    readSse(`${stack.api.baseUrl}/logs/pipeline/${runid}`, (e) => {
      if (e.event === 'end') return false;
      if (e.event !== 'log') return;
      const m = /^line (\d+)$/.exec((JSON.parse(e.data) as { line: string }).line);
      if (!m) return;
      const t = now();
      f.first ??= t;
      f.last = t;
      if (Number(m[1]) !== f.lines + 1) f.inOrder = false;
      f.lines++;
    }, {}, TIMEOUT_MS),
  );
  await Promise.all(reading);
  await ended;
  const complete = got.filter((f) => f.lines === LINES && f.inOrder).length;
  const firsts = got.filter((f) => f.first !== undefined).map((f) => f.first!);
  const lasts = got.filter((f) => f.last !== undefined).map((f) => f.last!);
  const seconds = (Math.max(...lasts) - Math.min(...firsts)) / 1000;
  const raw = await rawLines(stack, runid);
  return [
    [`scale: ${FOLLOWERS} SSE followers of a ${LINES}-line log: lines/s`, (LINES / seconds).toFixed(0), raw.toFixed(0), `${complete}/${FOLLOWERS} got every line in order (${((FOLLOWERS * LINES) / seconds).toFixed(0)} lines/s delivered in all); a raw publish of the same lines (${LOG_WINDOW} in flight) is ${(raw / (LINES / seconds)).toFixed(2)}x faster; timed from the first line any follower got to the last line of the last one`],
  ];
}

/** The same lines published by hand to a stream of their own: lines/s. */
async function rawLines(stack: Stack, runId: string): Promise<number> {
  await stack.jsm.streams.add({ name: 'RAW_LINES', subjects: ['raw-lines.>'], storage: StorageType.File });
  const js = jetstream(stack.nc);
  const window = new Set<Promise<unknown>>();
  const t0 = now();
  for (let i = 1; i <= LINES; i++) {
    const data = JSON.stringify({ runId, stepId: 'print', driver: DRIVERS[1], attempt: 1, seq: i, ts: new Date().toISOString(), stream: 'stdout', line: `line ${i}` });
    const p: Promise<unknown> = js.publish(`raw-lines.${runId}`, data).finally(() => window.delete(p));
    window.add(p);
    if (window.size >= LOG_WINDOW) await Promise.race(window);
  }
  await Promise.all(window);
  const seconds = (now() - t0) / 1000;
  await stack.jsm.streams.delete('RAW_LINES');
  return LINES / seconds;
}
