import { Logger } from '@nestjs/common';
import type { Subscription } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import type { JetStreamContext } from '@conveyor/jetstream';

/**
 * What every agent knows about cancelled runs, without a round trip per step: the
 * cancels bucket, watched (stored cancels, then live ones), plus the core-NATS signal that
 * reaches a step already running a moment sooner. `onCancel` fires for each run id.
 */
export class CancelWatch {
  private readonly cancelled = new Set<string>();
  private sub?: Subscription;
  private stopWatch?: () => void;
  private readonly log = new Logger('CancelWatch');

  constructor(private readonly onCancel: (runId: string) => void) {}

  /** Resolves once every cancel stored before the call is known. */
  async start(ctx: JetStreamContext, bucket: KV): Promise<void> {
    const tokens = ctx.subjects.prefix.split('.').length;
    this.sub = ctx.nc.subscribe(ctx.subjects.allCancels, {
      callback: (err, m) => {
        if (!err) this.add(m.subject.split('.')[tokens + 1]);
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
        if (e.operation === 'PUT') this.add(e.key);
        else this.cancelled.delete(e.key);
        if (e.revision >= lastSeq) markReady();
      }
    })().catch((err) => this.log.error(`cancel watch stopped: ${err}`));
    await ready;
  }

  has(runId: string): boolean {
    return this.cancelled.has(runId);
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.stopWatch?.();
  }

  private add(runId: string | undefined): void {
    if (!runId) return;
    this.cancelled.add(runId);
    this.onCancel(runId);
  }
}
