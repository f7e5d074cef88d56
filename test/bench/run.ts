import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { PROJECTOR_CONSUMER } from '@conveyor/contracts';
import { Api } from '../support/api';
import { freePort, NatsServer } from '../support/nats-server';
import { AppProcess, startTestDriver, waitFor } from '../support/processes';
import { monotonicMs as now } from '../drivers/behaviours';
import { benchArtifacts } from './artifacts';
import { baselineRuns } from './baseline-runs';
import { CpuMeter } from './cpu';
import { benchBrowser } from './browser';
import { benchCpu } from './cpu-phase';
import { benchDockerPipeline } from './docker-pipeline';
import { benchLogsThroughput } from './logs-throughput';
import { fencedWrite } from './fenced-write';
import { rawHop } from './raw-hop';
import { benchScale } from './scale';
import { summary, table } from './stats';

/**
 * `npm run bench`: the costs of Conveyor's delivery protocol against raw JetStream,
 * measured in the same run on the same machine. Prints a table; no pass/fail.
 */
const HOPS = Number(process.env.BENCH_HOPS ?? 500);
const RUNS = Number(process.env.BENCH_RUNS ?? 300);
const THROUGHPUT_RUNS = Number(process.env.BENCH_THROUGHPUT_RUNS ?? 500);
/** Runs per copy that a new set of agents serves before the throughput by copies is timed (see ./cpu-phase on warming up). */
const THROUGHPUT_WARM_UP = Number(process.env.BENCH_THROUGHPUT_WARMUP ?? 2_000);
/** Runs of the raw baseline beside each throughput by copies: it runs them 3-5 times as fast, so more of them, for a few seconds at least. */
const RAW_THROUGHPUT_RUNS = Number(process.env.BENCH_RAW_THROUGHPUT_RUNS ?? 10 * THROUGHPUT_RUNS);

const WARM_UP = 20;
/** Runs the hand-off's stack serves before its latency is measured (see handOff). */
const LATENCY_WARM_UP = Number(process.env.BENCH_LATENCY_WARMUP ?? 2_000);

/** Samples after the first WARM_UP (connections, consumers and JIT warm up). */
const warm = (samples: number[]) => samples.slice(WARM_UP);

/**
 * Hand-off and trigger latency, as deployed: the gateway and the two drivers are processes
 * of their own. Each step's handler returns when it was entered and left (test driver
 * behaviour `clock`, system-wide monotonic clock); the bench reads them from the steps'
 * hand-off records (each one carries how the step before it ended), like any observer of
 * `conveyor.steps.>`. Projector lag: from a run's end record on the wire to `GET /runs/:id`
 * showing the run ended.
 */
async function handOff(api: Api, nats: NatsServer): Promise<{ handoffs: number[]; triggers: number[]; lags: number[] }> {
  const drivers = [
    await startTestDriver(['bench-first'], { CONVEYOR_NATS_URL: nats.url, CONVEYOR_AGENT_ID: 'bench-first' }),
    await startTestDriver(['bench-second'], { CONVEYOR_NATS_URL: nats.url, CONVEYOR_AGENT_ID: 'bench-second' }),
  ];
  const nc = await connect({ servers: nats.url });
  const clocks = new Map<string, { one?: Clock; two?: Clock; endedAt?: number; done?: () => void }>();
  nc.subscribe('conveyor.steps.>', {
    callback: (_err, m) => {
      const e = m.json<{ runId: string; from?: { stepId: 'one' | 'two'; data?: Clock } }>();
      if (!e.from?.data) return;
      // The records may come before the POST's answer: keep them either way.
      let c = clocks.get(e.runId);
      if (!c) clocks.set(e.runId, (c = {}));
      c[e.from.stepId] = e.from.data;
      if (m.subject.endsWith('.end')) c.endedAt = now();
      if (c.one && c.two) c.done?.();
    },
  });
  await nc.flush();
  const config = { clock: true };
  await api.ok('POST', '/pipelines', {
    name: 'handoff',
    resource: 'bench',
    steps: [{ id: 'one', name: 'one', driver: 'bench-first', config }, { id: 'two', name: 'two', driver: 'bench-second', config }],
  });
  const handoffs: number[] = [];
  const triggers: number[] = [];
  const lags: number[] = [];
  try {
    // The gateway and both drivers serve LATENCY_WARM_UP runs first, 16 at a time (untimed):
    // a process takes thousands of runs to reach its steady cost (./cpu-phase), the raw hop's
    // small programs far fewer.
    const warming: string[] = [];
    await Promise.all(Array.from({ length: 16 }, async (_, lane) => {
      for (let i = lane; i < LATENCY_WARM_UP; i += 16) {
        warming.push((await api.ok<{ runid: string }>('POST', '/resources', { name: `hw-${i}`, resource: 'bench', pipeline: 'handoff', spec: {} })).runid);
      }
    }));
    await waitFor('the warm-up runs', () => (warming.every((id) => clocks.get(id)?.two) ? true : undefined), 300_000, 50);
    for (let i = 0; i < RUNS + WARM_UP; i++) {
      const t0 = now();
      const { runid } = await api.ok<{ runid: string }>('POST', '/resources', { name: `h-${i}`, resource: 'bench', pipeline: 'handoff', spec: {} });
      const c = clocks.get(runid) ?? {};
      clocks.set(runid, c);
      if (!(c.one && c.two)) {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`run ${runid} did not finish in 10 s`)), 10_000);
          c.done = () => { clearTimeout(t); resolve(); };
        });
      }
      triggers.push(c.one!.enteredAt - t0);
      handoffs.push(c.two!.enteredAt - c.one!.leftAt);
      // Every tenth run: how soon its record shows the end (polled every 2 ms, bounded).
      if (i % 10 === 0 && c.endedAt !== undefined) {
        for (let k = 0; k < 2_500; k++) {
          const run = await api.ok<{ status: string }>('GET', `/runs/${runid}`);
          if (run.status === 'succeeded') {
            lags.push(now() - c.endedAt);
            break;
          }
          await new Promise((r) => setTimeout(r, 2));
        }
      }
    }
  } finally {
    await nc.close();
    await Promise.all(drivers.map((d) => d.stop('SIGTERM')));
  }
  return { handoffs: warm(handoffs), triggers: warm(triggers), lags };
}

interface Clock { enteredAt: number; leftAt: number }

const FAN = 8;
const GRAPH_RUNS = Number(process.env.BENCH_GRAPH_RUNS ?? 100);

/**
 * A graph: one step, then FAN no-op steps side by side, then one that needs them all. Its
 * critical path is two hand-offs (fan-out, fan-in) of no-op steps: the time from the first
 * step's return to the join's entry, against two line hand-offs measured in the same run.
 * Clocks are read from the steps' `done` records. Then the throughput of such runs.
 */
async function graph(api: Api, nats: NatsServer): Promise<{ paths: number[]; fanOuts: number[]; fanIns: number[]; perSecond: number; correct: number }> {
  const drivers = [
    await startTestDriver(['bench-root', 'bench-join'], { CONVEYOR_NATS_URL: nats.url, CONVEYOR_AGENT_ID: 'bench-graph-1', CONVEYOR_CONCURRENCY: '16' }),
    await startTestDriver(['bench-fan'], { CONVEYOR_NATS_URL: nats.url, CONVEYOR_AGENT_ID: 'bench-graph-2', CONVEYOR_CONCURRENCY: '16' }),
  ];
  const nc = await connect({ servers: nats.url });
  const clocks = new Map<string, { steps: Map<string, Clock>; done?: () => void }>();
  nc.subscribe('conveyor.steps.*.*.done', {
    callback: (_err, m) => {
      const d = m.json<{ runId: string; from: { stepId: string; data?: Clock } }>();
      if (!d.from.data) return;
      let c = clocks.get(d.runId);
      if (!c) clocks.set(d.runId, (c = { steps: new Map() }));
      c.steps.set(d.from.stepId, d.from.data);
      if (c.steps.has('join')) c.done?.();
    },
  });
  await nc.flush();
  const config = { clock: true };
  const fan = Array.from({ length: FAN }, (_, i) => `f${i + 1}`);
  await api.ok('POST', '/pipelines', {
    name: 'graph',
    resource: 'bench',
    steps: [
      { id: 'root', name: 'root', driver: 'bench-root', config },
      ...fan.map((id) => ({ id, name: id, driver: 'bench-fan', needs: ['root'], config })),
      { id: 'join', name: 'join', driver: 'bench-join', needs: fan, config },
    ],
  });
  const paths: number[] = [];
  const fanOuts: number[] = [];
  const fanIns: number[] = [];
  try {
    // Warmed as the hand-off's stack is (10 steps a run: a fifth as many runs), 16 at a time.
    const warming: string[] = [];
    await Promise.all(Array.from({ length: 16 }, async (_, lane) => {
      for (let i = lane; i < LATENCY_WARM_UP / 5; i += 16) {
        warming.push((await api.ok<{ runid: string }>('POST', '/resources', { name: `gw-${i}`, resource: 'bench', pipeline: 'graph', spec: {} })).runid);
      }
    }));
    await waitFor('the warm-up runs', () => (warming.every((id) => clocks.get(id)?.steps.has('join')) ? true : undefined), 300_000, 50);
    for (let i = 0; i < GRAPH_RUNS + WARM_UP; i++) {
      const { runid } = await api.ok<{ runid: string }>('POST', '/resources', { name: `g-${i}`, resource: 'bench', pipeline: 'graph', spec: {} });
      const c = clocks.get(runid) ?? { steps: new Map<string, Clock>() };
      clocks.set(runid, c);
      if (!c.steps.has('join')) {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`graph run ${runid} did not finish in 10 s`)), 10_000);
          c.done = () => { clearTimeout(t); resolve(); };
        });
      }
      const root = c.steps.get('root')!;
      const join = c.steps.get('join')!;
      const fans = fan.map((id) => c.steps.get(id)!);
      paths.push(join.enteredAt - root.leftAt);
      fanOuts.push(Math.max(...fans.map((f) => f.enteredAt)) - root.leftAt);
      fanIns.push(join.enteredAt - Math.max(...fans.map((f) => f.leftAt)));
    }
    // Throughput: GRAPH_RUNS more, 16 at a time.
    const start = now();
    const ids: string[] = [];
    await Promise.all(Array.from({ length: 16 }, async (_, lane) => {
      for (let i = lane; i < GRAPH_RUNS; i += 16) ids.push((await api.ok<{ runid: string }>('POST', '/resources', { name: `gt-${i}`, resource: 'bench', pipeline: 'graph', spec: {} })).runid);
    }));
    const wanted = new Set(ids);
    const finished = await waitFor('graph throughput runs', async () => {
      const runs = await api.ok<Array<{ id: string; status: string }>>('GET', `/runs?pipeline=graph&limit=${Math.min(500, GRAPH_RUNS + WARM_UP + GRAPH_RUNS)}`);
      const ended = runs.filter((r) => wanted.has(r.id) && r.status !== 'queued' && r.status !== 'running');
      return ended.length === ids.length ? ended : undefined;
    }, 300_000, 100);
    const perSecond = ids.length / ((now() - start) / 1000);
    return { paths: warm(paths), fanOuts: warm(fanOuts), fanIns: warm(fanIns), perSecond, correct: finished.filter((r) => r.status === 'succeeded').length };
  } finally {
    await nc.close();
    await Promise.all(drivers.map((d) => d.stop('SIGTERM')));
  }
}

/**
 * THROUGHPUT_RUNS no-op 4-step runs, 16 clients, `copies` agents serving all four drivers. The
 * new agents first serve THROUGHPUT_WARM_UP runs per copy (untimed), so that each has served as
 * many steps when the timing starts, whatever the copies: a process takes thousands of runs to
 * reach its steady cost (./cpu-phase). Timed from
 * the first POST until every run's end record is stored and the projector folded it; the ends
 * are seen on a subscription (polling the gateway would take its CPU while it is measured), and
 * the run records are read once, after, to count the runs that succeeded. Also the CPU of the
 * gateway, the agents and the nats-server over the timed runs, and their stored bytes per record
 * (the raw baseline beside it carries as much).
 */
async function throughput(api: Api, nats: NatsServer, gatewayPid: number, copies: number): Promise<{ perSecond: number; correct: number; payloadBytes: number; cpuMsPerRun: number }> {
  const procs: AppProcess[] = [];
  for (let i = 0; i < copies; i++) {
    procs.push(await startTestDriver(['t1', 't2', 't3', 't4'], { CONVEYOR_NATS_URL: nats.url, CONVEYOR_AGENT_ID: `tp-${copies}-${i}`, CONVEYOR_CONCURRENCY: '16' }));
  }
  const nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  const ended = new Set<string>();
  // The runs of the burst being waited for that have not ended yet.
  let waiting: { open: Set<string>; done: () => void } | undefined;
  nc.subscribe('conveyor.steps.*.end', {
    callback: (_e, m) => {
      const run = m.subject.split('.')[2];
      ended.add(run);
      if (waiting?.open.delete(run) && waiting.open.size === 0) waiting.done();
    },
  });
  await nc.flush();
  const pipeline = `tp-${copies}`;
  await api.ok('POST', '/pipelines', { name: pipeline, resource: 'bench', steps: ['t1', 't2', 't3', 't4'].map((d, i) => ({ id: `s${i}`, name: d, driver: d })) });
  const burst = async (prefix: string, n: number): Promise<string[]> => {
    const ids: string[] = [];
    const lanes = 16;
    await Promise.all(Array.from({ length: lanes }, async (_, lane) => {
      for (let i = lane; i < n; i += lanes) {
        ids.push((await api.ok<{ runid: string }>('POST', '/resources', { name: `${prefix}-${i}`, resource: 'bench', pipeline, spec: {} })).runid);
      }
    }));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${prefix}: ${ids.filter((id) => !ended.has(id)).length} of ${n} runs had not ended after 300 s`)), 300_000);
      waiting = { open: new Set(ids.filter((id) => !ended.has(id))), done: () => { clearTimeout(t); resolve(); } };
      if (waiting.open.size === 0) waiting.done();
    });
    await waitFor('the projector to fold every record', async () => {
      const c = await jsm.consumers.info('CONVEYOR_RUNS', PROJECTOR_CONSUMER);
      return c.num_pending === 0 && c.num_ack_pending === 0 ? true : undefined;
    }, 300_000, 20);
    return ids;
  };
  try {
    await burst(`tp${copies}-warm`, THROUGHPUT_WARM_UP * copies);
    const stored = (await jsm.streams.info('CONVEYOR_RUNS')).state;
    const meter = new CpuMeter([{ name: 'gateway', pid: gatewayPid }, ...procs.map((p, i) => ({ name: `agent ${i}`, pid: p.proc.pid! })), { name: 'nats-server', pid: nats.pid! }]).start();
    const start = now();
    const ids = await burst(`tp${copies}`, THROUGHPUT_RUNS);
    const seconds = (now() - start) / 1000;
    const cpuMsPerRun = (meter.stop().total * 1000) / THROUGHPUT_RUNS;
    const storedAfter = (await jsm.streams.info('CONVEYOR_RUNS')).state;
    const payloadBytes = Math.round((storedAfter.bytes - stored.bytes) / Math.max(1, storedAfter.messages - stored.messages));
    const wanted = new Set(ids);
    // Newest first, a page of at most 500 at a time: the timed runs are the newest.
    let correct = 0;
    let seen = 0;
    let before = '';
    for (let page = 0; page < 100 && seen < ids.length; page++) {
      const runs = await api.ok<Array<{ id: string; status: string }>>('GET', `/runs?pipeline=${pipeline}&limit=500${before}`);
      if (!runs.length) break;
      for (const r of runs.filter((r) => wanted.has(r.id))) {
        seen++;
        if (r.status === 'succeeded') correct++;
      }
      before = `&before=${runs[runs.length - 1].id}`;
    }
    return { perSecond: ids.length / seconds, correct, payloadBytes, cpuMsPerRun };
  } finally {
    await nc.close();
    await Promise.all(procs.map((p) => p.stop('SIGTERM')));
  }
}

/** Latency, graphs, throughput by copies, artifacts and the dashboard, on one stack (BENCH_LATENCY=0 skips them). */
async function latencyAndThroughput(results: string[][]): Promise<void> {
  const nats = await NatsServer.start();
  let gateway: AppProcess | undefined;
  try {
    process.stdout.write(`raw JetStream hop x${HOPS}: in one process, across two, across two with events ... `);
    const rawIn = summary(warm(await rawHop(nats.url, HOPS + WARM_UP, 'in-process')));
    const raw = summary(warm(await rawHop(nats.url, HOPS + WARM_UP, 'cross-process')));
    const rawEvents = summary(warm(await rawHop(nats.url, HOPS + WARM_UP, 'with-events')));
    console.log('done');
    process.stdout.write(`run-log write vs plain publish x${HOPS} ... `);
    const writes = await fencedWrite(nats.url, HOPS + WARM_UP);
    const plainWrite = summary(warm(writes.plain));
    const fenced = summary(warm(writes.fenced));
    console.log('done');
    results.push([
      'run-log write median / p99 (ms)',
      `${fenced.median.toFixed(3)} / ${fenced.p99.toFixed(3)}`,
      `${plainWrite.median.toFixed(3)} / ${plainWrite.p99.toFixed(3)}`,
      `${(fenced.median / plainWrite.median).toFixed(2)}x a plain publish (fenced on the run, with a message id)`,
    ]);

    const port = await freePort();
    gateway = await AppProcess.start('gateway', 'apps/gateway/src/main.js', { CONVEYOR_NATS_URL: nats.url, CONVEYOR_HTTP_PORT: String(port) }, 'listening on');
    const api = new Api(`http://127.0.0.1:${port}`);
    await api.ok('POST', '/resource-definitions', { name: 'bench', schema: { type: 'object' } });

    process.stdout.write(`hand-off and trigger x${RUNS} ... `);
    const { handoffs, triggers, lags } = await handOff(api, nats);
    console.log('done');
    const handoff = summary(handoffs);
    const trigger = summary(triggers);
    const lag = summary(lags);
    results.push(
      ['raw hop medians (ms): in one process, with events', rawIn.median.toFixed(2), rawEvents.median.toFixed(2), `a hop with events is ${(rawEvents.median / raw.median).toFixed(2)}x a plain one`],
      ['hand-off median (ms)', handoff.median.toFixed(2), raw.median.toFixed(2), `${(handoff.median / raw.median).toFixed(2)}x a raw hop across processes (target <= 2x); ${(handoff.median / rawEvents.median).toFixed(2)}x one with events`],
      ['hand-off p99 (ms)', handoff.p99.toFixed(2), raw.p99.toFixed(2), `${(handoff.p99 / raw.p99).toFixed(2)}x`],
      ['trigger median (ms)', trigger.median.toFixed(2), '-', `target < 10 ms`],
      ['trigger p99 (ms)', trigger.p99.toFixed(2), '-', '-'],
      ['run record lag median / p99 (ms)', `${lag.median.toFixed(2)} / ${lag.p99.toFixed(2)}`, '-', `end record on the wire -> GET /runs/:id ended, ${lag.n} runs (target p99 <= 1000 ms)`],
    );

    process.stdout.write(`graph 1 -> ${FAN} -> 1 x${GRAPH_RUNS}, then its throughput ... `);
    const g = await graph(api, nats);
    console.log('done');
    const path = summary(g.paths);
    results.push(
      [`graph 1 -> ${FAN} -> 1: first step's return to the join's entry, median / p99 (ms)`, `${path.median.toFixed(2)} / ${path.p99.toFixed(2)}`, (2 * handoff.median).toFixed(2), `${(path.median / (2 * handoff.median)).toFixed(2)}x two line hand-offs (its critical path); fan-out ${summary(g.fanOuts).median.toFixed(2)} ms to the last of ${FAN}, fan-in ${summary(g.fanIns).median.toFixed(2)} ms`],
      [`graph runs/s (${FAN + 2} no-op steps each)`, g.perSecond.toFixed(1), '-', `${g.correct}/${GRAPH_RUNS} succeeded; ${(g.perSecond * (FAN + 2)).toFixed(0)} steps/s`],
    );

    const tp: Record<number, Awaited<ReturnType<typeof throughput>>> = {};
    const rawRuns: Record<number, number> = {};
    const rawCpu: Record<number, number> = {};
    const copiesList = (process.env.BENCH_COPIES ?? '1,2,4').split(',').map(Number);
    const cop = (n: number) => `${n} cop${n === 1 ? 'y' : 'ies'}`;
    for (const copies of copiesList) {
      process.stdout.write(`throughput: ${THROUGHPUT_RUNS} no-op 4-step runs, ${cop(copies)} of each driver, then the raw baseline laid out alike ... `);
      tp[copies] = await throughput(api, nats, gateway.proc.pid!, copies);
      // The raw client doing a run's least JetStream work (./baseline-runs) in as many processes,
      // each serving all four drivers, warmed up as much: first flat out, for its runs/s.
      const base = await baselineRuns(RAW_THROUGHPUT_RUNS, tp[copies].payloadBytes, THROUGHPUT_WARM_UP * copies, { layout: { copies, allSteps: true } });
      rawRuns[copies] = RAW_THROUGHPUT_RUNS / base.seconds;
      // And at Conveyor's pace: what each run costs the raw client at the same load, by processes.
      const paced = await baselineRuns(THROUGHPUT_RUNS * 2, tp[copies].payloadBytes, THROUGHPUT_WARM_UP * copies, { ratePerSecond: Math.round(tp[copies].perSecond), layout: { copies, allSteps: true } });
      rawCpu[copies] = (paced.cpu.total * 1000) / (THROUGHPUT_RUNS * 2);
      console.log('done');
      const first = copiesList[0];
      results.push(
        [
          `runs/s, ${cop(copies)} per driver`,
          tp[copies].perSecond.toFixed(1),
          copies === first ? '-' : tp[first].perSecond.toFixed(1),
          `${tp[copies].correct}/${THROUGHPUT_RUNS} succeeded (target >= 100/s)${copies === first ? '' : `, ${(tp[copies].perSecond / tp[first].perSecond).toFixed(2)}x of ${first}`}`,
        ],
        [
          `CPU per run (ms) in the throughput, ${cop(copies)}: Conveyor / raw baseline`,
          tp[copies].cpuMsPerRun.toFixed(2),
          rawCpu[copies].toFixed(2),
          `every process, user+system; the raw baseline's ${THROUGHPUT_RUNS * 2} runs started at Conveyor's runs/s${copies === first ? '' : `: ${(tp[copies].cpuMsPerRun / tp[first].cpuMsPerRun).toFixed(2)}x ${cop(first)}'s for Conveyor, ${(rawCpu[copies] / rawCpu[first]).toFixed(2)}x for the raw baseline`}`,
        ],
        [
          `raw baseline runs/s, ${cop(copies)} of its drivers`,
          rawRuns[copies].toFixed(1),
          copies === first ? '-' : rawRuns[first].toFixed(1),
          `${RAW_THROUGHPUT_RUNS} such runs on the raw client (./baseline-runs), ${copies} process${copies === 1 ? '' : 'es'} serving all four drivers${copies === first ? '' : `: ${(rawRuns[copies] / rawRuns[first]).toFixed(2)}x of ${first}, against Conveyor's ${(tp[copies].perSecond / tp[first].perSecond).toFixed(2)}x`}`,
        ],
      );
    }
    if (process.env.BENCH_ARTIFACTS !== '0') {
      process.stdout.write('a 100 MB artifact: upload, download through the gateway, the gateway\'s memory ... ');
      results.push(...(await benchArtifacts(api, nats, gateway.proc.pid!)));
      console.log('done');
    }
    if (process.env.BENCH_BROWSER !== '0') {
      process.stdout.write('dashboard in headless chromium: first log line, a 100,000-line log, the bundle ... ');
      results.push(...(await benchBrowser(api, nats)));
      console.log('done');
    }
  } finally {
    await gateway?.stop('SIGTERM');
    await nats.dispose();
  }
}

async function main(): Promise<void> {
  const results: string[][] = [['measure', 'conveyor', 'baseline (same run)', 'ratio / target']];
  if (process.env.BENCH_LATENCY !== '0') await latencyAndThroughput(results);
  if (process.env.BENCH_CPU !== '0') {
    process.stdout.write('CPU per run against a raw JetStream baseline, then the stack idle, then with tracing on ... ');
    results.push(...(await benchCpu()));
    console.log('done');
  }
  if (process.env.BENCH_SCALE === '1') {
    process.stdout.write('scale: a burst of runs, listing many stored runs, SSE followers of a long log ... ');
    results.push(...(await benchScale()));
    console.log('done');
  }
  if (process.env.BENCH_DOCKER !== '0') {
    process.stdout.write('full 4-step pipeline on real Docker vs the same by hand ... ');
    results.push(...(await benchDockerPipeline()));
    console.log('done');
    if (process.env.BENCH_LOG_THROUGHPUT !== '0') {
      process.stdout.write('a build printing many lines on real Docker vs docker exec > /dev/null ... ');
      results.push(...(await benchLogsThroughput()));
      console.log('done');
    }
  }
  console.log(`\n${table(results)}\n`);
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
