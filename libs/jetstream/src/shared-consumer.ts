import { JetStreamApiError, type ConsumeOptions, type ConsumerConfig, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { JetStreamContext } from './connection';
import { isNotFound } from './provision';
import { PULL_EXPIRES_MS, PULL_HEARTBEAT_MS } from './pulls';

const RESTART_DELAY_MS = 1000;

export interface SharedConsumerOptions {
  /** The stream it reads. */
  stream: string;
  /** Its configuration; `durable_name` names it, and copies of the app share it. */
  config: Partial<ConsumerConfig> & { durable_name: string };
  /** What it is, for log lines ("event consumer", "tick consumer"). */
  what: string;
  /** Pull options: the batch size. Pulls wait PULL_EXPIRES_MS, with heartbeats every PULL_HEARTBEAT_MS. */
  pull: Pick<ConsumeOptions, 'max_messages'>;
  /**
   * Each message, in order. Awaited before the next one is taken; to work on several at once,
   * start the work and return (the consumer's max_ack_pending bounds how many are out).
   */
  handle: (m: JsMsg) => void | Promise<void>;
  log: { warn(message: string): void };
}

/**
 * A durable consumer that copies of an app share (the gateways' runs projector, tick runner and
 * report sender), consumed until `stop()`: made or updated in place when it starts, made again
 * when an operator deletes it or its stream is lost, and consumed again whatever ended a consume
 * (NATS gone for long, a node that left). `stop()` also ends a consume that was still being set
 * up when it was called, so an app closed right after it started closes at once.
 */
export class SharedConsumer {
  private messages?: ConsumerMessages;
  private stopped = false;
  private loop?: Promise<void>;

  constructor(
    private readonly ctx: JetStreamContext,
    private readonly opts: SharedConsumerOptions,
  ) {}

  /**
   * Makes sure of the consumer and starts consuming. `required`: a failure to make it fails the
   * start (the app must not serve without it); otherwise it is logged and the loop tries again.
   */
  async start(opts: { required?: boolean } = {}): Promise<void> {
    if (opts.required) await this.ensure();
    else await this.ensure().catch((err) => this.opts.log.warn(`could not make sure of the ${this.opts.what}: ${(err as Error).message}; trying again`));
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.messages?.stop();
    await this.loop;
  }

  /** Adding the same config again is a no-op; a consumer left by an older config is updated in place. */
  async ensure(): Promise<void> {
    const { stream, config } = this.opts;
    try {
      await this.ctx.jsm.consumers.add(stream, config);
    } catch (err) {
      if (err instanceof JetStreamApiError && /already exists/i.test(err.message)) {
        const { durable_name: _name, deliver_policy: _policy, ...changeable } = config;
        await this.ctx.jsm.consumers.update(stream, config.durable_name, changeable);
        return;
      }
      // Seen on nats-server 2.15 after the consumer was deleted and made again at once by two
      // gateways: the add failed writing the consumer's file, yet the consumer serves. Use it.
      const found = await this.ctx.jsm.consumers.info(stream, config.durable_name).catch(() => undefined);
      if (!found) throw err;
      this.opts.log.warn(`the ${this.opts.what} could not be written again (${(err as Error).message}); using it as it is`);
    }
  }

  private async run(): Promise<void> {
    const { stream, config, what, pull, handle, log } = this.opts;
    while (!this.stopped) {
      try {
        const consumer = await this.ctx.js.consumers.get(stream, config.durable_name);
        this.messages = await consumer.consume({ ...pull, expires: PULL_EXPIRES_MS, idle_heartbeat: PULL_HEARTBEAT_MS });
        // Stopped while the consume was being set up: stop() found nothing to stop.
        if (this.stopped) {
          this.messages.stop();
          break;
        }
        void this.watch(this.messages);
        for await (const m of this.messages) {
          if (this.stopped) break;
          await handle(m);
        }
      } catch (err) {
        if (this.stopped) break;
        log.warn(`${what} failed: ${(err as Error).message}; retrying`);
        if (isNotFound(err)) await this.ensure().catch(() => undefined);
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, RESTART_DELAY_MS));
    }
  }

  /** A consumer deleted by hand (or lost with its stream) is made again, and consuming resumes. */
  private async watch(messages: ConsumerMessages): Promise<void> {
    for await (const s of messages.status()) {
      if (s.type === 'consumer_deleted' || (s.type === 'consumer_not_found' && s.count > 1)) {
        this.opts.log.warn(`${this.opts.what} ${s.type.replace('_', ' ')}; recreating it`);
        await this.ensure().catch((err) => this.opts.log.warn(`could not recreate the ${this.opts.what}: ${(err as Error).message}`));
      }
    }
  }
}
