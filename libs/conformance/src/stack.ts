import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Settings the kit gives the gateway and the driver: short enough that a redelivery after a SIGKILL comes in seconds. */
export const KIT_TIMINGS = { CONVEYOR_ACK_WAIT: '2s', CONVEYOR_HEARTBEAT_INTERVAL: '1s', CONVEYOR_RETRY_BACKOFF: '200ms' } as const;

/** Something the kit cannot run without (no nats-server, no built gateway): a usage error, not a failed driver. */
export class SetupError extends Error {}

/** A free TCP port on 127.0.0.1, from the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Children still running: killed, with their process groups, if the kit exits without stopping them (Ctrl-C, SIGTERM). */
const live = new Set<Child>();
/** The kit's temporary directories, removed at exit too. */
const tempDirs = new Set<string>();
let exitHook = false;

function hookExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    live.forEach((c) => c.running && killGroup(c.proc));
    tempDirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  });
}

/** A process with its output kept (the last part of it, for a report). */
export class Child {
  private out = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly what: string,
    readonly proc: ChildProcess,
  ) {
    const keep = (d: Buffer) => (this.out = (this.out + d.toString()).slice(-20_000));
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      proc.once('error', (err) => {
        this.out += `\n${what}: ${err.message}\n`;
        resolve({ code: null, signal: null });
      });
      proc.once('exit', (code, signal) => resolve({ code, signal }));
    });
    live.add(this);
    void this.exited.then(() => live.delete(this));
    hookExit();
  }

  get output(): string {
    return this.out;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null && this.proc.pid !== undefined;
  }

  /** The last lines of its output, for a failure's reason. */
  tail(lines = 15): string {
    return this.out.trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** Signals its whole process group (a command may be a wrapper around the driver), then waits, bounded. */
  async kill(signal: NodeJS.Signals, waitMs = 5_000): Promise<void> {
    if (!this.running) return;
    try {
      process.kill(-this.proc.pid!, signal);
    } catch {
      this.proc.kill(signal);
    }
    const timer = setTimeout(() => this.running && killGroup(this.proc), waitMs);
    await this.exited;
    clearTimeout(timer);
  }
}

function killGroup(p: ChildProcess): void {
  try {
    process.kill(-p.pid!, 'SIGKILL');
  } catch {
    p.kill('SIGKILL');
  }
}

/** Polls `probe` until it returns a value, at most `timeoutMs`; undefined when it never did. */
export async function poll<T>(probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 100): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() + everyMs > deadline) return undefined;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A nats-server with JetStream of the kit's own: a free port on 127.0.0.1, a temporary store. */
export async function startNats(): Promise<{ url: string; child: Child; close(): Promise<void> }> {
  const bin = natsServerBin();
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-conformance-'));
  tempDirs.add(dir);
  const port = await freePort();
  const child = new Child('nats-server', spawn(bin, ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'], detached: true }));
  const ready = await poll(async () => (child.output.includes('Server is ready') ? true : child.running ? undefined : false), 10_000, 25);
  const close = async () => {
    await child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  };
  if (!ready) {
    await close();
    throw new SetupError(`nats-server (${bin}) did not start:\n${child.tail()}`);
  }
  return { url: `nats://127.0.0.1:${port}`, child, close };
}

/** $NATS_SERVER_BIN, else nats-server on PATH. */
function natsServerBin(): string {
  const explicit = process.env.NATS_SERVER_BIN?.trim();
  if (explicit) {
    if (!existsSync(explicit)) throw new SetupError(`NATS_SERVER_BIN=${explicit}: no such file`);
    return explicit;
  }
  const found = (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'nats-server')).find((f) => existsSync(f));
  if (!found) throw new SetupError('nats-server is not on PATH: install it, or set NATS_SERVER_BIN');
  return found;
}

/** The repository's built gateway (npm run build), as a process on a free port, ready when GET /health answers. */
export async function startGateway(natsUrl: string): Promise<{ url: string; child: Child; close(): Promise<void> }> {
  // This file runs as dist/libs/conformance/src/stack.js.
  const main = join(__dirname, '..', '..', '..', 'apps', 'gateway', 'src', 'main.js');
  if (!existsSync(main)) throw new SetupError(`${main} is missing: run "npm run build" first`);
  const port = await freePort();
  const env = { ...inheritedEnv(), CONVEYOR_NATS_URL: natsUrl, CONVEYOR_HTTP_HOST: '127.0.0.1', CONVEYOR_HTTP_PORT: String(port), ...KIT_TIMINGS };
  const child = new Child('gateway', spawn(process.execPath, [main], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true }));
  const url = `http://127.0.0.1:${port}`;
  const ready = await poll(async () => (!child.running ? false : (await fetch(`${url}/health`)).status === 200 ? true : undefined), 20_000);
  const close = () => child.kill('SIGTERM');
  if (!ready) {
    await close();
    throw new SetupError(`the gateway did not start:\n${child.tail()}`);
  }
  return { url, child, close };
}

/** The environment a driver under test is started with: where NATS is, its name, conformance mode. */
export function driverEnv(natsUrl: string, driver: string): Record<string, string> {
  return {
    NATS_URL: natsUrl,
    CONVEYOR_NATS_URL: natsUrl,
    CONVEYOR_DRIVER_NAME: driver,
    CONVEYOR_CONFORMANCE: '1',
    // The scenarios run side by side.
    CONVEYOR_CONCURRENCY: '8',
    CONVEYOR_DRAIN_TIMEOUT: '2s',
    ...KIT_TIMINGS,
  };
}

/** Starts the driver under test: `command` as given, in a process group of its own (SIGKILL reaches all of it). */
export function startDriver(command: string[], env: Record<string, string>): Child {
  return new Child(`driver (${command.join(' ')})`, spawn(command[0], command.slice(1), { env: { ...inheritedEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true }));
}

/** This process's environment without Conveyor's settings: the kit's own server and gateway want none of the caller's (tokens, TLS, a prefix). */
function inheritedEnv(): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CONVEYOR_') && k !== 'NATS_URL'));
}
