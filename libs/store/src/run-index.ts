import type { KV } from '@nats-io/kv';
import { isNotFound, isWrongLastSequence, listKeys, provisionRunIndexStream, readBackwards, type JetStreamContext } from '@conveyor/jetstream';

/** Entries read per direct-get batch when paging back through the index. */
const READ_BATCH = 128;
/** Entries a backfill has in flight at once. */
const BACKFILL_WINDOW = 256;

/**
 * The order runs were made in: one entry per run on the run-index stream, stored before its run
 * record (so no record is ever missing from it; an entry whose record was never made, or has
 * expired, is skipped by readers). Listing the newest runs reads the stream's last entries, so
 * it costs the same with ten runs stored or a million.
 */
export class RunIndex {
  constructor(private readonly ctx: JetStreamContext) {}

  /** Makes the stream and, for runs stored before it existed, their entries (see `backfill`). */
  static async open(ctx: JetStreamContext, runs: KV): Promise<RunIndex> {
    await provisionRunIndexStream(ctx);
    const index = new RunIndex(ctx);
    await index.backfill(runs);
    return index;
  }

  /** Stores the run's entry; a second add of the same run (a retried create) stores nothing. */
  async add(runId: string): Promise<void> {
    try {
      await this.ctx.js.publish(this.ctx.subjects.runIndex(runId), undefined, { expect: { lastSubjectSequence: 0 } });
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
    }
  }

  /**
   * Run ids newest first, in batches: those stored before `before`'s entry, or without it all
   * from the end. When `before`'s entry is gone (expired, or never stored), those with lower ids
   * (ids are time-ordered), from the end.
   */
  async *newest(before?: string): AsyncGenerator<string[]> {
    const stream = this.ctx.subjects.runIndexStream;
    const { state } = await this.ctx.jsm.streams.info(stream);
    if (state.messages === 0) return;
    const at = before === undefined ? undefined : await this.seqOf(before);
    const upper = at === undefined ? state.last_seq : at - 1;
    for await (const batch of readBackwards(this.ctx.jsm, stream, { upper, first: state.first_seq, batch: READ_BATCH })) {
      const ids = batch.map((m) => this.ctx.subjects.runOfIndexEntry(m.subject));
      yield before !== undefined && at === undefined ? ids.filter((id) => id < before) : ids;
    }
  }

  private async seqOf(runId: string): Promise<number | undefined> {
    try {
      return (await this.ctx.jsm.direct.getMessage(this.ctx.subjects.runIndexStream, { last_by_subj: this.ctx.subjects.runIndex(runId) }))?.seq;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Entries for run records that have none: every record of a store made before the index
   * existed (in id order, which is the order they were made), or what a gateway stopped in
   * the middle of this left. Reads every key only when the index holds fewer entries than the
   * bucket holds records, which after the first start of a gateway with the index is never.
   */
  private async backfill(runs: KV): Promise<void> {
    const records = (await runs.status()).values;
    const stream = this.ctx.subjects.runIndexStream;
    const { state } = await this.ctx.jsm.streams.info(stream);
    if (state.messages >= records) return;
    const { state: listed } = await this.ctx.jsm.streams.info(stream, { subjects_filter: this.ctx.subjects.allRunIndex });
    const indexed = new Set(Object.keys(listed.subjects ?? {}).map((s) => this.ctx.subjects.runOfIndexEntry(s)));
    // Published in id order from one connection, so they are stored in that order; a window of
    // them in flight at once (a hundred thousand one by one would take half a minute).
    const window = new Set<Promise<void>>();
    for (const id of (await listKeys(runs)).filter((k) => !indexed.has(k)).sort()) {
      const p: Promise<void> = this.add(id).finally(() => window.delete(p));
      window.add(p);
      if (window.size >= BACKFILL_WINDOW) await Promise.race(window);
    }
    await Promise.all(window);
  }
}
