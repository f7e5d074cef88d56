import { Logger } from '@nestjs/common';
import type { Subscription } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import type { StopOrder } from '@conveyor/contracts';
import type { JetStreamContext } from '@conveyor/jetstream';

export type { StopOrder };

const USER_CANCEL: StopOrder = { status: 'cancelled', message: 'the run was cancelled' };

function parseOrder(data: Uint8Array): StopOrder {
  try {
    const v = JSON.parse(new TextDecoder().decode(data)) as Partial<StopOrder>;
    if (v.status === 'failed' && typeof v.message === 'string') return { status: 'failed', message: v.message };
    if (v.status === 'cancelled' && v.failFast === true && typeof v.message === 'string') return { status: 'cancelled', message: v.message, failFast: true };
  } catch {
    // A cancel written by hand (any value) is a plain cancel.
  }
  return USER_CANCEL;
}

/** Stop orders an agent keeps in memory at most (the oldest go first); see StopOrders. */
export const MAX_STOP_ORDERS = 10_000;

/**
 * Stop orders by run, bounded in age and in number, so a long-lived agent does not keep one
 * entry per cancelled run for ever:
 *  - an order older than `maxAgeMs` is dropped: the agent uses the cancels bucket's TTL
 *    (CONVEYOR_RUN_LOG_MAX_AGE), after which the bucket has forgotten it too, and the step
 *    messages it was about have expired from the steps stream;
 *  - beyond `maxEntries`, the oldest orders are dropped first. A step message of such a run
 *    that is delivered for the first time after that runs as if there were no order (a
 *    redelivery still reads the run record); that takes `maxEntries` newer cancels while
 *    the message waits.
 * Orders are not dropped when their run ends: a run the gateway failed (its machine gone)
 * has ended while its step messages still wait, and the order is what makes an agent skip
 * its normal steps and run only the cleanup when it takes them.
 */
export class StopOrders {
  /** In the order they were learnt, oldest first (a re-learnt order moves to the end). */
  private readonly byRun = new Map<string, { order: StopOrder; at: number }>();

  constructor(
    public maxAgeMs = Infinity,
    readonly maxEntries = MAX_STOP_ORDERS,
    private readonly now: () => number = Date.now,
  ) {
    if (!(maxEntries >= 1)) throw new Error(`maxEntries must be at least 1, not ${maxEntries}`);
  }

  /** Records an order made at `at` (ms since the epoch; a KV entry's time, or now). */
  set(runId: string, order: StopOrder, at: number = this.now()): void {
    const prev = this.byRun.get(runId);
    this.byRun.delete(runId);
    this.byRun.set(runId, { order, at: Math.max(at, prev?.at ?? -Infinity) });
    this.prune();
  }

  get(runId: string): StopOrder | undefined {
    const e = this.byRun.get(runId);
    if (!e) return undefined;
    if (this.now() - e.at > this.maxAgeMs) {
      this.byRun.delete(runId);
      return undefined;
    }
    return e.order;
  }

  delete(runId: string): void {
    this.byRun.delete(runId);
  }

  get size(): number {
    return this.byRun.size;
  }

  /** Drops from the oldest end: what is over the cap, and what is too old. */
  private prune(): void {
    const cutoff = this.now() - this.maxAgeMs;
    for (const [runId, e] of this.byRun) {
      if (this.byRun.size <= this.maxEntries && e.at >= cutoff) break;
      this.byRun.delete(runId);
    }
  }
}

/**
 * What every agent knows about cancelled runs, without a round trip per step: the
 * cancels bucket, watched (stored cancels, then live ones), plus the core-NATS signal that
 * reaches a step already running a moment sooner. `onCancel` fires for each run id.
 * The orders are kept in a StopOrders: at most `maxEntries`, none older than the bucket's TTL.
 */
export class CancelWatch {
  private readonly orders: StopOrders;
  private sub?: Subscription;
  private stopWatch?: () => void;
  private readonly log = new Logger('CancelWatch');

  constructor(
    private readonly onCancel: (runId: string, order: StopOrder) => void,
    opts: { maxEntries?: number } = {},
  ) {
    this.orders = new StopOrders(Infinity, opts.maxEntries ?? MAX_STOP_ORDERS);
  }

  /** Resolves once every cancel stored before the call is known. */
  async start(ctx: JetStreamContext, bucket: KV): Promise<void> {
    // The cancels bucket keeps an order this long (provision.ts: its TTL).
    this.orders.maxAgeMs = ctx.config.retention.runLogMaxAgeMs;
    this.sub = ctx.nc.subscribe(ctx.subjects.allCancels, {
      callback: (err, m) => {
        if (!err) this.add(ctx.subjects.parseCancel(m.subject), parseOrder(m.data));
      },
    });
    const status = await bucket.status();
    const lastSeq = status.streamInfo.state.last_seq;
    let markReady!: () => void;
    const ready = new Promise<void>((r) => (markReady = r));
    if (status.values === 0) markReady();
    const watch = await bucket.watch();
    this.stopWatch = () => watch.stop();
    void (async () => {
      for await (const e of watch) {
        if (e.operation === 'PUT') this.add(e.key, parseOrder(e.value), e.created.getTime());
        else this.orders.delete(e.key);
        if (e.revision >= lastSeq) markReady();
      }
    })().catch((err) => this.log.error(`cancel watch stopped: ${err}`));
    await ready;
  }

  get(runId: string): StopOrder | undefined {
    return this.orders.get(runId);
  }

  /** Orders held in memory (at most `maxEntries`). */
  get size(): number {
    return this.orders.size;
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.stopWatch?.();
  }

  private add(runId: string | undefined, order: StopOrder, at?: number): void {
    if (!runId) return;
    this.orders.set(runId, order, at);
    this.onCancel(runId, order);
  }
}
