import { DeliverPolicy, type Consumer, type JetStreamClient, type JetStreamManager, type OrderedConsumerOptions } from '@nats-io/jetstream';
import type { LogLine, LogsEnd, Subjects } from '@conveyor/contracts';

/**
 * A stored log line (and, when it is one line of text, its JSON as stored) or the run's end
 * marker, with its stream sequence (the SSE event id).
 */
export type LogEntry = { seq: number; line: LogLine; json?: string } | { seq: number; end: LogsEnd };

export interface ReadOptions {
  /** Only lines of this driver (the end marker always comes through). */
  driver?: string;
  /** Resume after this stream sequence (an SSE client's Last-Event-ID). */
  afterSeq?: number;
  /** Keep going with live lines until the run ends (or `signal` aborts). */
  follow: boolean;
  signal?: AbortSignal;
}

/**
 * Reads a run's logs from JetStream with an ordered consumer: what is stored first, then
 * live lines as they are published, in stream order, with no gap and no duplicate at the
 * seam (it is one consumer, not a replay followed by a subscription).
 *
 * Every read deletes its consumer when it ends, however it ends (all read, the run's end,
 * the caller's abort or `return()`, an error), so readers never outnumber the streams
 * open at the moment; the server's inactivity threshold (5 minutes) only covers a process
 * that died mid-read.
 */
export class LogReader {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly subjects: Subjects,
  ) {}

  async *read(runId: string, opts: ReadOptions): AsyncGenerator<LogEntry> {
    const afterSeq = opts.afterSeq && opts.afterSeq > 0 ? opts.afterSeq : 0;
    if (afterSeq) {
      // A client resuming at or after the run's end (an EventSource reconnects when the
      // stream closes) is told the end again; a consumer from there would wait for ever.
      const end = await this.storedEnd(runId);
      if (end && end.seq <= afterSeq) {
        if (!opts.signal?.aborted) yield end;
        return;
      }
    }
    const co: Partial<OrderedConsumerOptions> = { filter_subjects: this.subjects.runLogs(runId) };
    if (afterSeq) {
      co.deliver_policy = DeliverPolicy.StartSequence;
      co.opt_start_seq = afterSeq + 1;
    }
    const consumer = await this.js.consumers.get(this.subjects.logsStream, co);
    try {
      yield* this.entries(consumer, runId, opts);
    } finally {
      // The consumer would otherwise live on the server until its inactivity threshold.
      // An ordered consumer that was recreated (after a missed heartbeat) names its
      // current server-side consumer here; the one it replaced was deleted then.
      await consumer.delete().catch(() => undefined);
    }
  }

  private async *entries(consumer: Consumer, runId: string, opts: ReadOptions): AsyncGenerator<LogEntry> {
    // The client may have gone (or the app begun shutting down) while the consumer was made.
    if (opts.signal?.aborted) return;
    if (!opts.follow) {
      // Nothing stored (for this filter) means nothing to replay.
      const info = await consumer.info(true);
      if (info.num_pending === 0) return;
    }
    const messages = await consumer.consume({ max_messages: 512 });
    const stop = () => void messages.stop();
    opts.signal?.addEventListener('abort', stop, { once: true });
    try {
      if (opts.signal?.aborted) return;
      for await (const m of messages) {
        const seq = m.seq;
        const last = m.info.pending === 0;
        let entry: LogEntry | undefined;
        try {
          const text = m.string();
          const body = JSON.parse(text) as LogLine & LogsEnd;
          if (m.subject === this.subjects.logsEnd(runId)) entry = { seq, end: body };
          else if (!opts.driver || body.driver === opts.driver) entry = text.includes('\n') ? { seq, line: body } : { seq, line: body, json: text };
        } catch {
          // Not ours (published by hand): skip it rather than break the stream.
        }
        if (entry) yield entry;
        if (entry && 'end' in entry) return;
        if (!opts.follow && last) return;
      }
    } finally {
      opts.signal?.removeEventListener('abort', stop);
      // close() unsubscribes at once; not awaited: on a connection that is closing, the
      // promise need not ever settle, and a reader must not keep its process alive.
      void messages.close().catch(() => undefined);
    }
  }

  /** The run's end marker, if it is stored (the last one, should it have been published twice). */
  private async storedEnd(runId: string): Promise<{ seq: number; end: LogsEnd } | undefined> {
    const m = await this.jsm.streams.getMessage(this.subjects.logsStream, { last_by_subj: this.subjects.logsEnd(runId) });
    if (!m) return undefined;
    try {
      return { seq: m.seq, end: m.json<LogsEnd>() };
    } catch {
      return undefined; // not ours (published by hand)
    }
  }
}
