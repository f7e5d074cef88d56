import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { monotonicMs as now } from '../drivers/behaviours';
import { baselineRuns, STEPS } from './baseline-runs';
import { CLK_TCK, CpuMeter } from './cpu';
import { Stack } from './stack';

const RUNS = Number(process.env.BENCH_CPU_RUNS ?? process.env.BENCH_THROUGHPUT_RUNS ?? 500);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
const WARM_UP = 20;
const LANES = 16;

const ms = (seconds: number) => (seconds * 1000).toFixed(2);

/**
 * CPU per run: user + system time (/proc/<pid>/stat) of every process of the system — the
 * gateway, one agent per driver, the nats-server — over RUNS no-op 4-step runs started by 16
 * clients (after WARM_UP runs that make the drivers' consumers and warm the JIT), from the
 * first POST until every run ended and the projector folded it; divided by the runs. Then the
 * same for the baseline (./baseline-runs: raw JetStream, the same process layout, each payload as
 * large as Conveyor's stored records on average, subject and headers included, so the baseline's
 * records are a little larger than Conveyor's). Then the stack idle for IDLE_SECONDS: CPU as % of
 * one core.
 * BENCH_CPU_PROF=dir: the gateway and the first agent are profiled over the measured runs.
 */
export async function benchCpu(): Promise<string[][]> {
  const profDir = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : undefined;
  if (profDir) mkdirSync(profDir, { recursive: true });
  const stack = await Stack.start(1, profDir);
  const rows: string[][] = [];
  let conveyor: ReturnType<CpuMeter['stop']>;
  let seconds: number;
  let payloadBytes: number;
  let recordsPerRun: number;
  let idle: ReturnType<CpuMeter['stop']> | undefined;
  let profiles: string[] = [];
  try {
    await stack.burst('cpu-warm', WARM_UP, LANES, 120_000);
    const streamBefore = await stack.runsStream();
    if (profDir) await stack.toggleProfiles(false);
    const meter = new CpuMeter(stack.procs()).start();
    const t0 = now();
    await stack.burst('cpu', RUNS, LANES, 600_000);
    seconds = (now() - t0) / 1000;
    conveyor = meter.stop();
    if (profDir) profiles = await stack.toggleProfiles(true);
    const streamAfter = await stack.runsStream();
    recordsPerRun = (streamAfter.messages - streamBefore.messages) / RUNS;
    payloadBytes = Math.round((streamAfter.bytes - streamBefore.bytes) / (streamAfter.messages - streamBefore.messages));
    if (IDLE_SECONDS > 0) {
      // Let in-progress acks, heartbeats and timers of the burst settle before idling is counted.
      await new Promise((r) => setTimeout(r, 2_000));
      const idleMeter = new CpuMeter(stack.procs()).start();
      await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
      idle = idleMeter.stop();
    }
  } finally {
    await stack.stop();
  }
  const base = await baselineRuns(RUNS, payloadBytes, WARM_UP);

  const per = (s: number) => s / RUNS;
  const find = (cpu: typeof conveyor, name: string) => cpu.perProcess.find((p) => p.name === name)?.seconds ?? 0;
  const agents = conveyor.perProcess.filter((p) => p.name.startsWith('agent '));
  const agentTotal = agents.reduce((s, p) => s + p.seconds, 0);
  const baseDrivers = base.cpu.perProcess.filter((p) => p.name.startsWith('driver '));
  const baseDriverTotal = baseDrivers.reduce((s, p) => s + p.seconds, 0);
  const share = (s: number) => `${((100 * s) / conveyor.total).toFixed(0)}% of Conveyor's total`;
  rows.push(
    [`CPU per run (ms), total: ${RUNS} no-op ${STEPS}-step runs`, ms(per(conveyor.total)), ms(per(base.cpu.total)), `${(conveyor.total / base.cpu.total).toFixed(2)}x the baseline (target <= 2x); user+system, CLK_TCK ${CLK_TCK}, Conveyor stored ${recordsPerRun.toFixed(1)} records per run (the baseline 5), the baseline's payload ${payloadBytes} B: Conveyor's stored bytes per record`],
    ['CPU per run (ms): gateway / starter', ms(per(find(conveyor, 'gateway'))), ms(per(find(base.cpu, 'starter'))), share(find(conveyor, 'gateway'))],
    ...agents.map((a, i) => [`CPU per run (ms): ${a.name} / driver ${i + 1}`, ms(per(a.seconds)), ms(per(baseDrivers[i]?.seconds ?? 0)), `${(a.seconds / (baseDrivers[i]?.seconds || NaN)).toFixed(2)}x`]),
    ['CPU per run (ms): all agents / all drivers', ms(per(agentTotal)), ms(per(baseDriverTotal)), `${(agentTotal / baseDriverTotal).toFixed(2)}x; ${share(agentTotal)}`],
    ['CPU per run (ms): nats-server', ms(per(find(conveyor, 'nats-server'))), ms(per(find(base.cpu, 'nats-server'))), `${(find(conveyor, 'nats-server') / find(base.cpu, 'nats-server')).toFixed(2)}x; ${share(find(conveyor, 'nats-server'))}`],
    ['runs/s while CPU was measured', (RUNS / seconds).toFixed(1), (RUNS / base.seconds).toFixed(1), `wall clock, ${LANES} clients; cores busy: ${(conveyor.total / seconds).toFixed(2)} against ${(base.cpu.total / base.seconds).toFixed(2)}`],
  );
  if (idle) {
    const pct = (s: number) => `${((100 * s) / IDLE_SECONDS).toFixed(2)}`;
    rows.push(
      ...idle.perProcess.map((p) => [`idle CPU, % of one core: ${p.name}`, pct(p.seconds), '-', `over ${IDLE_SECONDS} s`]),
      ['idle CPU, % of one core: total', pct(idle.total), '-', `gateway + ${agents.length} agents + nats-server (target < 1%)`],
    );
  }
  if (profiles.length) console.log(`\nCPU profiles of the measured runs: ${profiles.join(', ')}`);
  return rows;
}
