import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/** How long a line's acknowledgement is waited for before the line counts as lost. */
const ACK_TIMEOUT_MS = 10_000;

/** Told once per line: stored (JetStream acknowledged it) or not (an error, no stream, no answer in time). */
export type Stored = (stored: boolean) => void;

/**
 * JetStream publishes of log lines, each acknowledged, pipelined on one connection for every
 * step of an agent. A line is a plain publish whose reply subject is one of this publisher's
 * inbox, where one subscription takes every acknowledgement: JetStream stores and acknowledges
 * it exactly as a `js.publish`, without a request object, a timer and a promise per line
 * (measured: 0.3 ms of CPU per line and 37,000 lines/s that way, 0.05 ms and 133,000 lines/s
 * this way, 512 in flight). Lines sent on one connection are stored in the order sent.
 */
export class LogPublisher {
  private readonly inbox: string;
  private readonly sub: Subscription;
  private next = 0;
  /** Lines waiting for their acknowledgement: what to tell, and when each was sent. */
  private readonly waiting = new Map<number, { stored: Stored; at: number }>();
  private sweeper?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly ackTimeoutMs = ACK_TIMEOUT_MS,
  ) {
    this.inbox = createInbox();
    this.sub = nc.subscribe(`${this.inbox}.*`, { callback: (_err, m) => this.acknowledged(m) });
  }

  /** Sends `data` to `subject` (a subject of the logs stream); `stored` is told the outcome. */
  publish(subject: string, data: string, stored: Stored): void {
    if (this.closed) {
      stored(false);
      return;
    }
    const id = ++this.next;
    try {
      this.nc.publish(subject, data, { reply: `${this.inbox}.${id}` });
    } catch {
      // A closed or draining connection: not sent.
      stored(false);
      return;
    }
    this.waiting.set(id, { stored, at: Date.now() });
    this.sweeper ??= setInterval(() => this.sweep(), Math.min(1_000, this.ackTimeoutMs));
  }

  /** Stops taking acknowledgements; lines still waiting count as lost. */
  close(): void {
    this.closed = true;
    this.sub.unsubscribe();
    for (const { stored } of this.waiting.values()) stored(false);
    this.waiting.clear();
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private acknowledged(m: Msg): void {
    const id = Number(m.subject.slice(this.inbox.length + 1));
    const line = this.waiting.get(id);
    if (!line) return;
    this.waiting.delete(id);
    // A stored line's answer is {"stream":…,"seq":…}; JetStream's refusal carries "error", and
    // a subject no stream takes is answered by the server with an empty 503 (no responders).
    line.stored(m.data.length > 0 && !m.string().includes('"error"'));
  }

  private sweep(): void {
    const before = Date.now() - this.ackTimeoutMs;
    for (const [id, line] of this.waiting) {
      if (line.at > before) break; // sent in order: the rest are younger
      this.waiting.delete(id);
      line.stored(false);
    }
    if (!this.waiting.size) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}
