import type { NatsServer } from '../support/nats-server';

interface Connz {
  connections: Array<{ cid: number; name?: string; in_msgs: number; out_msgs: number }>;
}

/**
 * NATS messages each process exchanged with the server between `start()` and `stop()`, as the
 * server counts them (its monitoring endpoint's /connz: messages in from the client plus
 * messages out to it, JetStream API requests and replies, acks and heartbeats included),
 * summed by connection name. Unlike CPU time, a count that does not change with the machine's
 * load: it shows what a change saved even when the CPU figures are within their noise.
 */
export class MessageMeter {
  private before = new Map<number, number>();

  constructor(
    private readonly server: NatsServer,
    /** The process a connection belongs to, from its name; undefined: not counted (the bench's own). */
    private readonly processOf: (name: string) => string | undefined,
  ) {}

  async start(): Promise<this> {
    this.before = new Map((await this.connections()).map((c) => [c.cid, c.in_msgs + c.out_msgs]));
    return this;
  }

  /** Messages per process; a connection made after `start()` counts from 0. */
  async stop(): Promise<{ perProcess: Map<string, number>; total: number }> {
    const perProcess = new Map<string, number>();
    for (const c of await this.connections()) {
      const p = this.processOf(c.name ?? '');
      if (p === undefined) continue;
      perProcess.set(p, (perProcess.get(p) ?? 0) + c.in_msgs + c.out_msgs - (this.before.get(c.cid) ?? 0));
    }
    return { perProcess, total: [...perProcess.values()].reduce((s, n) => s + n, 0) };
  }

  private async connections(): Promise<Connz['connections']> {
    return (await this.server.monitor<Connz>('/connz?limit=4096')).connections;
  }
}
