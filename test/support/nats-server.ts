import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { freePort } from '../../libs/driver-sdk/src/local-run';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WireCheck, wireCheckEnabled } from './wire-check';

// The SDK's own (its local nats-server for drivers' tests picks ports the same way).
export { freePort };

export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = tcpConnect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

/**
 * A real nats-server with JetStream and file storage, on a free port on 127.0.0.1, with its
 * own store directory. `restart()` keeps the directory, so stored state survives it.
 */
export class NatsServer {
  readonly storeDir: string;
  private proc?: ChildProcess;
  private output = '';
  /** What checks the messages sent through it against schemas/ (e2e suites, a server without a config of its own). */
  wire?: WireCheck;

  private constructor(
    readonly port: number,
    /** Server configuration text (e.g. `authorization { … }`); the command line sets the rest. */
    private readonly config?: string,
    /** The nats-server binary: $NATS_SERVER_BIN, else `nats-server` on PATH. */
    private readonly bin: string = process.env.NATS_SERVER_BIN || 'nats-server',
    /** Port of the HTTP monitoring endpoint (on 127.0.0.1, like the client port), when asked for. */
    readonly monitorPort?: number,
  ) {
    this.storeDir = mkdtempSync(join(tmpdir(), 'conveyor-nats-'));
  }

  /** The server's process id while it runs (the bench reads its CPU time from /proc). */
  get pid(): number | undefined {
    return this.proc?.exitCode === null ? this.proc.pid : undefined;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** `bin` runs another nats-server binary than the default (e.g. an old one, NATS_SERVER_OLD_BIN). */
  /**
   * `wire`: the user the wire check connects as, for a `config` that requires one (without it,
   * such a server is not checked); `false`: no wire check (a test that counts the server's
   * connections). `monitor`: serve the HTTP monitoring endpoint (see `monitor()`).
   */
  static async start(opts: { config?: string; bin?: string; wire?: { user: string; pass: string } | false; monitor?: boolean } = {}): Promise<NatsServer> {
    const server = new NatsServer(await freePort(), opts.config, opts.bin, opts.monitor ? await freePort() : undefined);
    await server.launch();
    const needsUser = /^\s*(authorization|accounts)\b/m.test(opts.config ?? '');
    if (wireCheckEnabled() && opts.wire !== false && (!needsUser || opts.wire)) server.wire = await WireCheck.attach(server.url, opts.wire || undefined);
    return server;
  }

  private async launch(): Promise<void> {
    const args = ['-js', '-sd', this.storeDir, '-a', '127.0.0.1', '-p', String(this.port)];
    if (this.monitorPort) args.push('-m', String(this.monitorPort));
    if (this.config) {
      const file = join(this.storeDir, 'server.conf');
      writeFileSync(file, this.config);
      args.unshift('-c', file);
    }
    this.proc = spawn(this.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout?.on('data', (d) => (this.output += d));
    this.proc.stderr?.on('data', (d) => (this.output += d));
    // A binary that is not there: say so, rather than crash the test file with an unhandled 'error'.
    let spawnFailed = false;
    this.proc.once('error', (err) => {
      spawnFailed = true;
      this.output += `${this.bin}: ${err.message}\n`;
    });
    const deadline = Date.now() + 10_000;
    while (!this.output.includes('Server is ready')) {
      if (spawnFailed || this.proc.exitCode !== null || Date.now() > deadline) throw new Error(`nats-server did not start:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** GET of a monitoring endpoint (`/connz?limit=…`, `/jsz`…), parsed; the server must have been started with `monitor`. */
  async monitor<T>(path: string): Promise<T> {
    if (!this.monitorPort) throw new Error('this nats-server was started without its monitoring endpoint (NatsServer.start({ monitor: true }))');
    const res = await fetch(`http://127.0.0.1:${this.monitorPort}${path}`);
    if (!res.ok) throw new Error(`nats-server monitoring ${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }

  /** Stops the server (SIGTERM by default; SIGKILL to simulate a crash). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await exited;
    this.output = '';
  }

  async restart(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.stop(signal);
    await this.launch();
  }

  async dispose(): Promise<void> {
    await this.wire?.close();
    await this.stop();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}
