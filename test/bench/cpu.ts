import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat's times (`getconf CLK_TCK`; 100 on Linux when it cannot be asked). */
export const CLK_TCK = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/**
 * User + system CPU time of a process so far (all its threads), in clock ticks, from
 * /proc/<pid>/stat. Fields 14 and 15; counted after the `)` that ends the command name, which
 * may itself hold spaces or parentheses.
 */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime (14) and stime (15) are fields[11] and fields[12].
  return Number(fields[11]) + Number(fields[12]);
}

/** Resident memory of a process in bytes, from /proc/<pid>/status. */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export interface Proc { name: string; pid: number }

/** CPU seconds each process used between `start()` and `stop()`. */
export class CpuMeter {
  private readonly before = new Map<number, number>();

  constructor(private readonly procs: Proc[]) {}

  start(): this {
    for (const p of this.procs) this.before.set(p.pid, cpuTicks(p.pid));
    return this;
  }

  /** Seconds of CPU per process, in the order given, and their sum. */
  stop(): { perProcess: Array<{ name: string; seconds: number }>; total: number } {
    const perProcess = this.procs.map((p) => ({ name: p.name, seconds: (cpuTicks(p.pid) - this.before.get(p.pid)!) / CLK_TCK }));
    return { perProcess, total: perProcess.reduce((s, p) => s + p.seconds, 0) };
  }
}
