import { hostname } from 'node:os';
import { Logger } from '@nestjs/common';
import type { KV } from '@nats-io/kv';
import type { AgentInfo } from '@conveyor/contracts';
import type { ConveyorConfig } from '@conveyor/config';

/**
 * Keeps this agent's entry in the agents bucket fresh. The bucket's TTL drops the entry of
 * an agent that stopped heartbeating (crashed, or cut off); a clean stop deletes it at once.
 */
export class Heartbeat {
  private timer?: NodeJS.Timeout;
  private readonly startedAt = new Date().toISOString();
  private draining = false;
  /** Beats being written, awaited by stop() so that none lands after the entry's delete. */
  private readonly inflight = new Set<Promise<void>>();
  private readonly log = new Logger('Heartbeat');

  constructor(
    private readonly bucket: KV,
    private readonly config: ConveyorConfig,
    private readonly drivers: string[],
    private readonly running: () => AgentInfo['running'],
  ) {}

  /** `reconnected` fires when the NATS connection comes back: the agent says at once what it runs. */
  async start(reconnected?: AsyncIterable<unknown>): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.config.agent.heartbeatMs);
    this.timer.unref();
    // A restarted nats-server may redeliver work this agent is still doing (it forgot the
    // deliveries): other agents read this beat before they run such work (see StepRecords).
    if (reconnected) void (async () => { for await (const _ of reconnected) void this.beat(); })().catch(() => undefined);
  }

  /** The agent stops taking work: said at once (GET /drivers shows it), and in every beat until it leaves. */
  drain(): Promise<void> {
    this.draining = true;
    return this.beat();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.inflight);
    await this.bucket.delete(this.config.agent.id).catch(() => undefined);
  }

  private beat(): Promise<void> {
    const p: Promise<void> = this.write().finally(() => this.inflight.delete(p));
    this.inflight.add(p);
    return p;
  }

  private async write(): Promise<void> {
    const { id, machine, concurrency } = this.config.agent;
    const info: AgentInfo = {
      id,
      drivers: this.drivers,
      machine,
      host: hostname(),
      pid: process.pid,
      concurrency,
      running: this.running(),
      startedAt: this.startedAt,
      lastHeartbeat: new Date().toISOString(),
      ...(this.draining ? { draining: true } : {}),
    };
    try {
      await this.bucket.put(id, JSON.stringify(info));
    } catch (err) {
      // NATS away for a moment: the next beat tries again; the TTL is three beats long.
      this.log.warn(`heartbeat failed: ${(err as Error).message}`);
    }
  }
}
