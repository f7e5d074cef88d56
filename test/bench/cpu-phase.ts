import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { monotonicMs as now } from '../drivers/behaviours';
import { baselineRuns, STEPS } from './baseline-runs';
import { CLK_TCK, CpuMeter } from './cpu';
import { Stack } from './stack';
import { MessageMeter } from './messages';
import { OtlpReceiver } from '../support/otlp-receiver';

const RUNS = Number(process.env.BENCH_CPU_RUNS ?? 1_000);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
/**
 * Runs before the measured ones, on each side: they make the drivers' consumers, and the
 * processes reach their steady state. V8 takes long to get there: on one stack (2026-12-04),
 * after 500 runs a run still cost 6.6 ms of CPU, after 2,500 4.5 ms (the gateway 2.2 -> 1.5 ms,
 * the agents 3.1 -> 1.7 ms); what hot code it compiles and tunes runs on the processes'
 * own threads and counts as their CPU. A CI system's processes serve for days: the steady
 * figure is the one to compare, and the first COLD_RUNS after the consumers are made are
 * reported beside it.
 */
const WARM_UP = Number(process.env.BENCH_CPU_WARMUP ?? 2_000);
/** The runs that make the drivers' consumers, first of the warm-up (not measured). */
const FIRST_RUNS = Math.min(20, WARM_UP);
const COLD_RUNS = Math.min(500, WARM_UP - FIRST_RUNS);
const LANES = 16;
/**
 * The measured runs start at this pace on both sides (0: as fast as 16 clients can). Paced, the
 * two are compared at the same load: flat out, the baseline runs four to five times as many runs
 * a second as Conveyor, and a process that is busier writes and reads more messages per system
 * call, so its CPU per run falls with its load (the baseline's moved between 1.1 and 2.2 ms).
 */
const RATE = Number(process.env.BENCH_CPU_RATE ?? 200);

const ms = (seconds: number) => (seconds * 1000).toFixed(2);

interface Measured {
  cpu: ReturnType<CpuMeter['stop']>;
  messages: Awaited<ReturnType<MessageMeter['stop']>>;
  seconds: number;
  recordsPerRun: number;
  payloadBytes: number;
  idle?: ReturnType<CpuMeter['stop']>;
  /** CPU over the COLD_RUNS after the first runs, part of the warm-up. */
  cold?: ReturnType<CpuMeter['stop']>;
  profiles: string[];
}

/**
 * RUNS no-op runs on a stack of its own (after WARM_UP runs that make the drivers' consumers and
 * bring the processes to their steady state; the CPU of COLD_RUNS of them is kept): CPU and NATS messages of every process from the first POST until every run
 * ended and the projector folded it; then, when `idleSeconds`, the stack idle.
 */
async function measureStack(opts: { env?: Record<string, string>; profileDir?: string; idleSeconds: number }): Promise<Measured> {
  const stack = await Stack.start(1, { profileDir: opts.profileDir, env: opts.env });
  try {
    await stack.burst('cpu-first', FIRST_RUNS, LANES, 120_000);
    const coldMeter = new CpuMeter(stack.procs()).start();
    if (COLD_RUNS > 0) await stack.burst('cpu-cold', COLD_RUNS, LANES, 600_000);
    const cold = COLD_RUNS > 0 ? coldMeter.stop() : undefined;
    if (WARM_UP > FIRST_RUNS + COLD_RUNS) await stack.burst('cpu-warm', WARM_UP - FIRST_RUNS - COLD_RUNS, LANES, 600_000);
    const streamBefore = await stack.runsStream();
    if (opts.profileDir) await stack.toggleProfiles(false);
    const messageMeter = await stack.messageMeter().start();
    const meter = new CpuMeter(stack.procs()).start();
    const t0 = now();
    await stack.burst('cpu', RUNS, LANES, 600_000, undefined, RATE);
    const seconds = (now() - t0) / 1000;
    const cpu = meter.stop();
    const messages = await messageMeter.stop();
    const profiles = opts.profileDir ? await stack.toggleProfiles(true) : [];
    const streamAfter = await stack.runsStream();
    const stored = streamAfter.messages - streamBefore.messages;
    const m: Measured = { cpu, messages, seconds, recordsPerRun: stored / RUNS, payloadBytes: Math.round((streamAfter.bytes - streamBefore.bytes) / stored), profiles, cold };
    if (opts.idleSeconds > 0) {
      // Let in-progress acks, heartbeats and timers of the burst settle before idling is counted.
      await new Promise((r) => setTimeout(r, 2_000));
      const idleMeter = new CpuMeter(stack.procs()).start();
      await new Promise((r) => setTimeout(r, opts.idleSeconds * 1000));
      m.idle = idleMeter.stop();
    }
    return m;
  } finally {
    await stack.stop();
  }
}

/**
 * CPU per run: user + system time (/proc/<pid>/stat) of every process of the system — the
 * gateway, one agent per driver, the nats-server — over RUNS no-op 4-step runs started by 16
 * clients, divided by the runs; and the NATS messages each process exchanged with the server
 * per run (./messages). Then the same for the baseline (./baseline-runs: raw JetStream, the same
 * process layout, each payload as large as Conveyor's stored records on average, subject and
 * headers included, so the baseline's records are a little larger than Conveyor's). Then the
 * stack idle for IDLE_SECONDS: CPU as % of one core. Then, on a new stack, the runs again with
 * tracing on (BENCH_TRACING=0: not): every run sampled, every process exporting its spans over
 * OTLP/HTTP to a receiver in the bench (its own CPU is not counted: a collector's work).
 * BENCH_CPU_PROF=dir: the gateway and the first agent are profiled over the measured runs.
 */
export async function benchCpu(): Promise<string[][]> {
  const profileDir = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const m = await measureStack({ profileDir, idleSeconds: IDLE_SECONDS });
  const { cpu: conveyor, idle } = m;
  const base = await baselineRuns(RUNS, m.payloadBytes, WARM_UP, { ratePerSecond: RATE, idleSeconds: idle ? IDLE_SECONDS : 0 });
  let traced: { m: Measured; spans: number } | undefined;
  if (process.env.BENCH_TRACING !== '0') {
    const receiver = await OtlpReceiver.start();
    try {
      // A short export delay: the spans of the measured runs are sent while they are measured.
      const t = await measureStack({ env: { CONVEYOR_OTEL_ENDPOINT: receiver.url, CONVEYOR_OTEL_SAMPLE_RATIO: '1', CONVEYOR_OTEL_EXPORT_DELAY: '1s' }, idleSeconds: 0 });
      traced = { m: t, spans: receiver.spans.length };
    } finally {
      await receiver.close();
    }
  }

  const per = (s: number) => s / RUNS;
  const find = (cpu: typeof conveyor, name: string) => cpu.perProcess.find((p) => p.name === name)?.seconds ?? 0;
  const agents = conveyor.perProcess.filter((p) => p.name.startsWith('agent '));
  const agentTotal = agents.reduce((s, p) => s + p.seconds, 0);
  const baseDrivers = base.cpu.perProcess.filter((p) => p.name.startsWith('driver '));
  const baseDriverTotal = baseDrivers.reduce((s, p) => s + p.seconds, 0);
  const share = (s: number) => `${((100 * s) / conveyor.total).toFixed(0)}% of Conveyor's total`;
  const msgs = (n: number | undefined) => ((n ?? 0) / RUNS).toFixed(1);
  const rows: string[][] = [
    [`CPU per run (ms), total: ${RUNS} no-op ${STEPS}-step runs, after ${WARM_UP}${RATE > 0 ? `, ${RATE}/s` : ''}`, ms(per(conveyor.total)), ms(per(base.cpu.total)), `${(conveyor.total / base.cpu.total).toFixed(2)}x the baseline (target <= 2x); user+system, CLK_TCK ${CLK_TCK}, Conveyor stored ${m.recordsPerRun.toFixed(1)} records per run (the baseline 5), the baseline's payload ${m.payloadBytes} B: Conveyor's stored bytes per record`],
    ['CPU per run (ms): gateway / starter', ms(per(find(conveyor, 'gateway'))), ms(per(find(base.cpu, 'starter'))), share(find(conveyor, 'gateway'))],
    ...agents.map((a, i) => [`CPU per run (ms): ${a.name} / driver ${i + 1}`, ms(per(a.seconds)), ms(per(baseDrivers[i]?.seconds ?? 0)), `${(a.seconds / (baseDrivers[i]?.seconds || NaN)).toFixed(2)}x`]),
    ['CPU per run (ms): all agents / all drivers', ms(per(agentTotal)), ms(per(baseDriverTotal)), `${(agentTotal / baseDriverTotal).toFixed(2)}x; ${share(agentTotal)}`],
    ['CPU per run (ms): nats-server', ms(per(find(conveyor, 'nats-server'))), ms(per(find(base.cpu, 'nats-server'))), `${(find(conveyor, 'nats-server') / find(base.cpu, 'nats-server')).toFixed(2)}x; ${share(find(conveyor, 'nats-server'))}`],
    ['NATS messages per run: gateway / starter', msgs(m.messages.perProcess.get('gateway')), msgs(base.messages.perProcess.get('starter')), 'in + out, as the server counts them (/connz): requests, replies, acks and deliveries'],
    ['NATS messages per run: all agents / all drivers', msgs(m.messages.perProcess.get('agents')), msgs(base.messages.perProcess.get('drivers')), `${(m.messages.total / base.messages.total).toFixed(2)}x the baseline in all (${msgs(m.messages.total)} against ${msgs(base.messages.total)})`],
    ...(m.cold
      ? [[
          `CPU per run (ms), total: runs ${FIRST_RUNS + 1}-${FIRST_RUNS + COLD_RUNS} of the new stack`,
          ms(m.cold.total / COLD_RUNS),
          '-',
          `${(m.cold.total / COLD_RUNS / per(conveyor.total)).toFixed(2)}x its steady figure (above: after ${WARM_UP} runs); gateway ${ms(find(m.cold, 'gateway') / COLD_RUNS)}, agents ${ms(m.cold.perProcess.filter((p) => p.name.startsWith('agent ')).reduce((s, p) => s + p.seconds, 0) / COLD_RUNS)}, nats-server ${ms(find(m.cold, 'nats-server') / COLD_RUNS)}`,
        ]]
      : []),
    ['runs/s while CPU was measured', (RUNS / m.seconds).toFixed(1), (RUNS / base.seconds).toFixed(1), `wall clock, ${LANES} clients${RATE > 0 ? `, started at ${RATE}/s` : ''}; cores busy: ${(conveyor.total / m.seconds).toFixed(2)} against ${(base.cpu.total / base.seconds).toFixed(2)}`],
  ];
  if (traced) {
    const t = traced.m.cpu;
    rows.push([
      'CPU per run (ms), total, tracing on',
      ms(per(t.total)),
      ms(per(base.cpu.total)),
      `${(t.total / base.cpu.total).toFixed(2)}x the baseline, ${(t.total / conveyor.total).toFixed(2)}x Conveyor with tracing off (a stack of its own); every run sampled, ${(traced.spans / (RUNS + WARM_UP)).toFixed(1)} spans per run exported over OTLP/HTTP; gateway ${ms(per(find(t, 'gateway')))}, agents ${ms(per(t.perProcess.filter((p) => p.name.startsWith('agent ')).reduce((s, p) => s + p.seconds, 0)))}, nats-server ${ms(per(find(t, 'nats-server')))}`,
    ]);
  }
  if (idle) {
    // Beside each process, its counterpart of the baseline idled alike: the floor of a nats.js
    // process holding its consumers' pulls open, and of a nats-server with nothing to do.
    const pct = (s: number) => `${((100 * s) / IDLE_SECONDS).toFixed(2)}`;
    const baseIdle = base.idle?.perProcess ?? [];
    // Stack.procs() lists the gateway, then the agents in the drivers' order, then the nats-server.
    const counterpart = (name: string, i: number) => (name === 'gateway' ? 'starter' : name === 'nats-server' ? 'nats-server' : `driver ${i}`);
    rows.push(
      ...idle.perProcess.map((p, i) => {
        const other = baseIdle.find((b) => b.name === counterpart(p.name, i));
        return [`idle CPU, % of one core: ${p.name}${other ? ` / ${other.name}` : ''}`, pct(p.seconds), other ? pct(other.seconds) : '-', `over ${IDLE_SECONDS} s, 2 s after the measured runs`];
      }),
      ['idle CPU, % of one core: total', pct(idle.total), base.idle ? pct(base.idle.total) : '-', `gateway + ${agents.length} agents + nats-server (target < 1%); the baseline: its starter, ${baseDrivers.length} drivers and nats-server idled alike`],
    );
  }
  if (m.profiles.length) console.log(`\nCPU profiles of the measured runs: ${m.profiles.join(', ')}`);
  return rows;
}
