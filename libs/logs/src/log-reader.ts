import { DeliverPolicy, type JetStreamClient, type OrderedConsumerOptions } from '@nats-io/jetstream';
import type { LogLine, LogsEnd, Subjects } from '@conveyor/contracts';

/** A stored log line or the run's end marker, with its stream sequence (the SSE event id). */
export type LogEntry = { seq: number; line: LogLine } | { seq: number; end: LogsEnd };

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
 */
export class LogReader {
  constructor(
    private readonly js: JetStreamClient,
    private readonly subjects: Subjects,
  ) {}

  async *read(runId: string, opts: ReadOptions): AsyncGenerator<LogEntry> {
    const co: Partial<OrderedConsumerOptions> = { filter_subjects: this.subjects.runLogs(runId) };
    if (opts.afterSeq && opts.afterSeq > 0) {
      co.deliver_policy = DeliverPolicy.StartSequence;
      co.opt_start_seq = opts.afterSeq + 1;
    }
    const consumer = await this.js.consumers.get(this.subjects.logsStream, co);
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
          const body = m.json<LogLine & LogsEnd>();
          if (m.subject === this.subjects.logsEnd(runId)) entry = { seq, end: body };
          else if (!opts.driver || body.driver === opts.driver) entry = { seq, line: body };
        } catch {
          // Not ours (published by hand): skip it rather than break the stream.
        }
        if (entry) yield entry;
        if (entry && 'end' in entry) return;
        if (!opts.follow && last) return;
      }
    } finally {
      opts.signal?.removeEventListener('abort', stop);
      // Not awaited: on a connection that is closing, close() need not ever settle, and a
      // reader must not keep its process alive.
      void messages.close().catch(() => undefined);
    }
  }
}
