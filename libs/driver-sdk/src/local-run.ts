import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isName, NAME_RULE, newRunId, type JsonObject, type Pipeline, type Resource, type StepEnded } from '@conveyor/contracts';
import { loadConfig } from '@conveyor/config';
import { connectJetStream, provisionStreams, type JetStreamContext } from '@conveyor/jetstream';
import { LogReader } from '@conveyor/logs';
import { RunLog } from '@conveyor/run-log';
import { firstStepMessage, newRun } from '@conveyor/runs';

/**
 * Tools for a driver's own tests, without a gateway: run one step through whatever driver
 * serves it, on a local nats-server. The run is started with the gateway's own write (the
 * run's first record, RunLog.start), so the driver sees exactly what a real run sends.
 */

export interface RunStepOptions {
  /** The driver that runs the step. */
  driver: string;
  /** The step's `config`. */
  config?: JsonObject;
  /** The resource's `spec` (ctx.resource.spec). */
  spec?: JsonObject;
  /** Attempts beyond the first when the step fails (default 0 here). */
  retries?: number;
  /** The step's own timeout, in seconds. */
  timeout?: number;
  /** How long to wait for the run to end (default 30 s); then runStep rejects. */
  waitMs?: number;
  /** CONVEYOR_* settings, as the driver's (CONVEYOR_NATS_URL, CONVEYOR_PREFIX…); default process.env. */
  env?: Record<string, string | undefined>;
}

/** How the one-step run ended. */
export interface LocalRun {
  runId: string;
  status: 'succeeded' | 'failed' | 'cancelled';
  /** The step's ending: message, data, attempt, agent… (absent only if the run ended without it). */
  step?: StepEnded;
  /** The step's log lines, in order (every attempt's). */
  lines: string[];
}

/** Starts a run of one step of `driver` and waits (bounded) for its end. */
export async function runStep(options: RunStepOptions): Promise<LocalRun> {
  if (!isName(options.driver)) throw new Error(`runStep: invalid driver name ${JSON.stringify(options.driver)}: ${NAME_RULE}`);
  const waitMs = options.waitMs ?? 30_000;
  const deadline = Date.now() + waitMs;
  const ctx = await bounded(connectJetStream(loadConfig(options.env ?? process.env, { name: 'conveyor-run-step' })), waitMs, 'connecting to NATS');
  try {
    await provisionStreams(ctx);
    const now = new Date().toISOString();
    const pipeline: Pipeline = {
      name: 'local',
      description: 'one step, started by runStep',
      resource: 'local',
      steps: [{ id: 'step', name: options.driver, driver: options.driver, retries: options.retries ?? 0, config: options.config ?? {}, ...(options.timeout ? { timeout: options.timeout } : {}) }],
      createdAt: now,
      updatedAt: now,
    };
    const resource: Resource = { name: 'local', resource: 'local', spec: options.spec ?? {}, metadata: {}, version: 1, createdAt: now };
    const run = newRun(newRunId(), pipeline, resource);
    const runLog = new RunLog(ctx);
    const started = await runLog.start(firstStepMessage(run, resource), 5_000);
    if (!started.stored) throw new Error(`runStep: run ${run.id} could not start`);
    const end = await waitForEnd(runLog, ctx, run.id, deadline, options.driver);
    return { runId: run.id, status: end.status, step: end.from, lines: await readLines(ctx, run.id) };
  } finally {
    await ctx.nc.close().catch(() => undefined);
  }
}

async function waitForEnd(runLog: RunLog, ctx: JetStreamContext, runId: string, deadline: number, driver: string) {
  for (;;) {
    const got = await runLog.lastRecord(ctx.subjects.runEnd(runId));
    if (got?.record.kind === 'end') return got.record.end;
    if (Date.now() > deadline) throw new Error(`runStep: run ${runId} did not end in time: is a driver "${driver}" running on this NATS (and prefix)?`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function readLines(ctx: JetStreamContext, runId: string): Promise<string[]> {
  const lines: string[] = [];
  for await (const e of new LogReader(ctx.js, ctx.jsm, ctx.subjects).read(runId, { follow: false })) if ('line' in e) lines.push(e.line.line);
  return lines;
}

function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`runStep: ${what} took over ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** A nats-server of this machine, with JetStream, for a test. */
export interface LocalNats {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts `bin` (default $NATS_SERVER_BIN, else `nats-server` on PATH) with JetStream on a free
 * port of 127.0.0.1 and a temporary store, and waits (bounded) until it listens.
 */
export async function startNatsServer(options: { bin?: string; timeoutMs?: number } = {}): Promise<LocalNats> {
  const bin = options.bin ?? (process.env.NATS_SERVER_BIN || 'nats-server');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-nats-'));
  const proc = spawn(bin, ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  proc.stderr?.on('data', (d) => (output += d));
  const failed = new Promise<string>((resolve) => {
    proc.once('error', (err) => resolve(`cannot run ${bin}: ${err.message} (set NATS_SERVER_BIN or put nats-server on PATH)`));
    proc.once('exit', (code) => resolve(`${bin} exited (${code}) before it listened:\n${output}`));
  });
  const exited = new Promise<void>((resolve) => proc.once('close', () => resolve()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let problem: string | undefined;
  void failed.then((p) => (problem = p));
  while (!(await listening(port))) {
    if (problem || Date.now() > deadline) {
      await stop();
      throw new Error(problem ?? `nats-server did not listen on 127.0.0.1:${port} in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `nats://127.0.0.1:${port}`, stop };
}

/** A free TCP port on 127.0.0.1, from the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
