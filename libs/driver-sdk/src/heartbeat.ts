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

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.bucket.delete(this.config.agent.id).catch(() => undefined);
  }

  private async beat(): Promise<void> {
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
    };
    try {
      await this.bucket.put(id, JSON.stringify(info));
    } catch (err) {
      // NATS away for a moment: the next beat tries again; the TTL is three beats long.
      this.log.warn(`heartbeat failed: ${(err as Error).message}`);
    }
  }
}
