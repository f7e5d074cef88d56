import { Logger } from '@nestjs/common';
import type { Subscription } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import type { JetStreamContext } from '@conveyor/jetstream';

/** Why a run must stop: a user's cancel, or the gateway giving up on it (e.g. its machine is gone). */
export interface StopOrder {
  status: 'cancelled' | 'failed';
  message: string;
}

const USER_CANCEL: StopOrder = { status: 'cancelled', message: 'the run was cancelled' };

function parseOrder(data: Uint8Array): StopOrder {
  try {
    const v = JSON.parse(new TextDecoder().decode(data)) as Partial<StopOrder>;
    if (v.status === 'failed' && typeof v.message === 'string') return { status: 'failed', message: v.message };
  } catch {
    // A cancel written by hand (any value) is a plain cancel.
  }
  return USER_CANCEL;
}

/**
 * What every agent knows about cancelled runs, without a round trip per step: the
 * cancels bucket, watched (stored cancels, then live ones), plus the core-NATS signal that
 * reaches a step already running a moment sooner. `onCancel` fires for each run id.
 */
export class CancelWatch {
  private readonly orders = new Map<string, StopOrder>();
  private sub?: Subscription;
  private stopWatch?: () => void;
  private readonly log = new Logger('CancelWatch');

  constructor(private readonly onCancel: (runId: string, order: StopOrder) => void) {}

  /** Resolves once every cancel stored before the call is known. */
  async start(ctx: JetStreamContext, bucket: KV): Promise<void> {
    const tokens = ctx.subjects.prefix.split('.').length;
    this.sub = ctx.nc.subscribe(ctx.subjects.allCancels, {
      callback: (err, m) => {
        if (!err) this.add(m.subject.split('.')[tokens + 1], parseOrder(m.data));
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
        if (e.operation === 'PUT') this.add(e.key, parseOrder(e.value));
        else this.orders.delete(e.key);
        if (e.revision >= lastSeq) markReady();
      }
    })().catch((err) => this.log.error(`cancel watch stopped: ${err}`));
    await ready;
  }

  get(runId: string): StopOrder | undefined {
    return this.orders.get(runId);
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.stopWatch?.();
  }

  private add(runId: string | undefined, order: StopOrder): void {
    if (!runId) return;
    this.orders.set(runId, order);
    this.onCancel(runId, order);
  }
}
