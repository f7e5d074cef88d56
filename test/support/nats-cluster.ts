import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { freePort } from './nats-server';
import { waitFor } from './processes';
import { WireCheck, wireCheckEnabled } from './wire-check';

/**
 * The shipped cluster configs (deploy/nats/cluster-N.conf), which this harness boots. This file
 * runs from test/support under ts-jest and from dist/test/support in compiled programs (the
 * chaos suite); deploy/ is beside test/ in the repository, never under dist/.
 */
const UP = join(__dirname, '..', '..');
const CONFIG_DIR = join(basename(UP) === 'dist' ? dirname(UP) : UP, 'deploy', 'nats');
/** The ports the shipped configs use, per node: client, cluster route, monitoring. */
const SHIPPED_PORTS = (n: number) => ({ client: 4221 + n, cluster: 6221 + n, http: 8221 + n });

interface NodePorts {
  client: number;
  cluster: number;
  http: number;
}

/** What a node's monitoring endpoint /jsz says about its own copy of a stream. */
export interface LocalStreamState {
  messages: number;
  lastSeq: number;
}

class ClusterNode {
  proc?: ChildProcess;
  output = '';

  constructor(
    readonly index: number,
    readonly name: string,
    readonly ports: NodePorts,
    readonly storeDir: string,
    readonly configFile: string,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.ports.client}`;
  }

  get alive(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async launch(): Promise<void> {
    const bin = process.env.NATS_SERVER_BIN || 'nats-server';
    this.output = '';
    const proc = spawn(bin, ['-c', this.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stdout?.on('data', (d) => (this.output += d));
    proc.stderr?.on('data', (d) => (this.output += d));
    const deadline = Date.now() + 15_000;
    while (!this.output.includes('Server is ready')) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`${this.name} did not start:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async stop(signal: NodeJS.Signals): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }

  /** The node's own view (GET /jsz on its monitoring port), not the stream leader's. */
  async jsz(): Promise<{ meta_cluster?: { leader?: string }; account_details?: Array<{ stream_detail?: Array<{ name: string; state: { messages: number; last_seq: number } }> }> }> {
    const res = await fetch(`http://127.0.0.1:${this.ports.http}/jsz?accounts=true&streams=true`);
    if (!res.ok) throw new Error(`${this.name} /jsz: ${res.status}`);
    return (await res.json()) as never;
  }
}

/**
 * A real 3-node nats-server JetStream cluster on free 127.0.0.1 ports, booted from the
 * shipped deploy/nats/cluster-N.conf files with only ports and store directories replaced,
 * so the suites that use it also prove those files. Each node keeps its store directory
 * (under the OS tmpdir, which honours TMPDIR) across `kill`/`restart`.
 */
export class NatsCluster {
  private readonly dir: string;
  /** What checks the messages sent through the cluster against schemas/ (e2e suites). */
  wire?: WireCheck;

  private constructor(readonly nodes: ClusterNode[], dir: string) {
    this.dir = dir;
  }

  static async start(): Promise<NatsCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-nats-cluster-'));
    const ports: NodePorts[] = [];
    const taken = new Set<number>();
    for (let i = 0; i < 3; i++) ports.push({ client: await fresh(taken), cluster: await fresh(taken), http: await fresh(taken) });
    const nodes = ports.map((p, i) => {
      const n = i + 1;
      const storeDir = join(dir, `n${n}`);
      const configFile = join(dir, `cluster-${n}.conf`);
      const shipped = readFileSync(join(CONFIG_DIR, `cluster-${n}.conf`), 'utf8');
      writeFileSync(configFile, localise(shipped, ports, n, storeDir));
      return new ClusterNode(i, serverName(shipped), p, storeDir, configFile);
    });
    const cluster = new NatsCluster(nodes, dir);
    try {
      await Promise.all(nodes.map((node) => node.launch()));
      await cluster.waitUntilReady();
      // Subscribed through every node: a killed node's share of the traffic reaches it through another.
      if (wireCheckEnabled()) cluster.wire = await WireCheck.attach(nodes.map((n) => n.url));
    } catch (err) {
      await cluster.dispose();
      throw err;
    }
    return cluster;
  }

  /** All client URLs, comma-joined: the value for CONVEYOR_NATS_URL. */
  get urls(): string {
    return this.nodes.map((n) => n.url).join(',');
  }

  /** Same as `urls`, so a cluster can stand where a single NatsServer's `url` is read. */
  get url(): string {
    return this.urls;
  }

  /** The node index whose server name is `name` (e.g. a stream's `cluster.leader`). */
  indexOf(name: string): number {
    const i = this.nodes.findIndex((n) => n.name === name);
    if (i < 0) throw new Error(`no node named ${name} (nodes: ${this.nodes.map((n) => n.name).join(', ')})`);
    return i;
  }

  /** Stops node `i` (SIGKILL by default: a crash) and waits for the process to exit. */
  kill(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return this.nodes[i].stop(signal);
  }

  /** Starts node `i` again on the same ports and store directory; waits until it serves JetStream. */
  async restart(i: number): Promise<void> {
    await this.nodes[i].stop('SIGTERM');
    await this.nodes[i].launch();
    await this.waitUntilReady();
  }

  /**
   * Waits (bounded) until every running node knows the meta leader and a client gets its
   * JetStream account info: the point from which streams can be created and used.
   */
  async waitUntilReady(timeoutMs = 30_000): Promise<void> {
    const running = this.nodes.filter((n) => n.alive);
    await waitFor('every cluster node to see a JetStream meta leader', async () => {
      const views = await Promise.all(running.map((n) => n.jsz()));
      return views.every((v) => !!v.meta_cluster?.leader) ? true : undefined;
    }, timeoutMs, 100);
    const nc = await connect({ servers: running.map((n) => n.url), timeout: 5000 });
    try {
      const jsm = await jetstreamManager(nc, { timeout: 5000 });
      await waitFor('JetStream account info from the cluster', () => jsm.getAccountInfo(), timeoutMs, 200);
    } finally {
      await nc.close();
    }
  }

  /** Node `i`'s local copy of `stream` (messages and last sequence), as that node reports it. */
  async localStreamState(i: number, stream: string): Promise<LocalStreamState | undefined> {
    const view = await this.nodes[i].jsz();
    for (const account of view.account_details ?? []) {
      const s = account.stream_detail?.find((d) => d.name === stream);
      if (s) return { messages: s.state.messages, lastSeq: s.state.last_seq };
    }
    return undefined;
  }

  /** Kills every node and removes the store directories. */
  async dispose(): Promise<void> {
    await this.wire?.close();
    await Promise.all(this.nodes.map((n) => n.stop('SIGKILL')));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function fresh(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const p = await freePort();
    if (!taken.has(p)) {
      taken.add(p);
      return p;
    }
  }
  throw new Error('no distinct free port after 20 tries');
}

function serverName(conf: string): string {
  const m = /^server_name:\s*(\S+)/m.exec(conf);
  if (!m) throw new Error('deploy/nats cluster config has no server_name');
  return m[1];
}

/**
 * Rewrites a shipped cluster config for this test: every shipped port becomes the node's free
 * port and the store directory a fresh one. Fails loudly if a replacement finds nothing, so a
 * change of the shipped files cannot silently leave the test on the fixed ports.
 */
function localise(conf: string, ports: NodePorts[], n: number, storeDir: string): string {
  let out = conf;
  const replace = (pattern: RegExp, by: string, what: string) => {
    if (!pattern.test(out)) throw new Error(`deploy/nats/cluster-${n}.conf: expected ${what} (${pattern})`);
    out = out.replace(pattern, by);
  };
  replace(/store_dir:\s*"[^"]*"/, `store_dir: ${JSON.stringify(storeDir)}`, 'a quoted store_dir');
  for (const [i, p] of ports.entries()) {
    const shipped = SHIPPED_PORTS(i + 1);
    // Routes name every node's cluster port; listen lines only this node's ports.
    replace(new RegExp(`127\\.0\\.0\\.1:${shipped.cluster}\\b`, 'g'), `127.0.0.1:${p.cluster}`, `route to node ${i + 1}`);
    if (i + 1 === n) {
      replace(new RegExp(`127\\.0\\.0\\.1:${shipped.client}\\b`, 'g'), `127.0.0.1:${p.client}`, 'the client listen address');
      replace(new RegExp(`127\\.0\\.0\\.1:${shipped.http}\\b`, 'g'), `127.0.0.1:${p.http}`, 'the monitoring address');
    }
  }
  return out;
}
