import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';

// This file runs from test/support under ts-jest and from dist/test/support in the bench.
const UP = join(__dirname, '..', '..');
const DIST = basename(UP) === 'dist' ? UP : join(UP, 'dist');

/** A compiled app of this repository (npm run build makes dist/), run as a real process. */
export class AppProcess {
  private output = '';
  private exited?: Promise<number | null>;

  private constructor(
    readonly name: string,
    readonly proc: ChildProcess,
    /** CONVEYOR_AGENT_ID of a driver process. */
    readonly agentId?: string,
  ) {
    proc.stdout?.on('data', (d) => (this.output += d));
    proc.stderr?.on('data', (d) => (this.output += d));
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  }

  /**
   * Starts `dist/<entry>` (or `entry` itself when absolute: a program built outside this
   * repository) and waits (bounded) until its output contains `readyText`. `nodeArgs` go to node
   * before the file (the bench's `--require` of its CPU profiler).
   */
  static async start(name: string, entry: string, env: Record<string, string>, readyText: string, timeoutMs = 20_000, nodeArgs: string[] = []): Promise<AppProcess> {
    const file = isAbsolute(entry) ? entry : join(DIST, entry);
    if (!existsSync(file)) throw new Error(`${file} is missing: run "npm run build" first (test/run.sh does)`);
    const proc = spawn(process.execPath, [...nodeArgs, file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const app = new AppProcess(name, proc, env.CONVEYOR_AGENT_ID);
    const deadline = Date.now() + timeoutMs;
    while (!app.output.includes(readyText)) {
      if (proc.exitCode !== null || Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`${name} did not start (exit ${proc.exitCode}):\n${app.output}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return app;
  }

  get logs(): string {
    return this.output;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Sends a signal without waiting (SIGSTOP and SIGCONT freeze and thaw the process). */
  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.proc.kill(signal);
  }

  /** Waits (bounded: then SIGKILL) for an exit already asked for, without a signal of its own; returns the exit code. */
  async exit(timeoutMs = 40_000): Promise<number | null> {
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code ?? null;
  }

  /** Sends a signal and waits (bounded) for the exit; returns the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 40_000): Promise<number | null> {
    if (this.alive) this.proc.kill(signal);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code ?? null;
  }
}

/**
 * Runs `dist/<entry>` to its exit (bounded: killed after `timeoutMs`) and returns its exit code
 * (null when killed by a signal) and everything it wrote, stdout and stderr together. For apps
 * that must refuse to start.
 */
export async function runToExit(entry: string, env: Record<string, string>, timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  const file = join(DIST, entry);
  if (!existsSync(file)) throw new Error(`${file} is missing: run "npm run build" first (test/run.sh does)`);
  const proc = spawn(process.execPath, [file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (d) => (output += d));
  proc.stderr.on('data', (d) => (output += d));
  const timer = setTimeout(() => {
    output += `\n[test] still running after ${timeoutMs} ms: killed\n`;
    proc.kill('SIGKILL');
  }, timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => proc.once('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  return { code, signal, output };
}

/** A test driver process (test/drivers) serving the given driver names. */
export function startTestDriver(drivers: string[], env: Record<string, string>, nodeArgs: string[] = []): Promise<AppProcess> {
  return AppProcess.start(
    `test-driver(${drivers.join(',')})`,
    'test/drivers/main.js',
    { TEST_DRIVERS: drivers.join(','), ...env },
    'Nest microservice successfully started',
    20_000,
    nodeArgs,
  );
}

/** Polls `check` until it returns a value (not undefined), bounded by `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
}
