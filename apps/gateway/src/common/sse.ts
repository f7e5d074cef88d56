import type { Response } from 'express';

/** Keeps proxies and idle-timeouts from closing a quiet stream. */
export const SSE_PING_MS = 15_000;

/**
 * Starts a Server-Sent Events answer: headers sent at once (the client's `open` means the
 * stream is live), a reconnect delay of a second, and a comment every SSE_PING_MS.
 * Returns the function that stops the pings.
 */
export function openSse(res: Response): () => void {
  res.status(200).set({
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.flushHeaders();
  res.write('retry: 1000\n\n');
  const ping = setInterval(() => res.write(': ping\n\n'), SSE_PING_MS);
  return () => clearInterval(ping);
}

/** Waits until the client took what was written, or is gone. */
export function drained(res: Response, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Frames held at most before they are written, whatever the turn of the event loop. */
const SSE_BATCH_BYTES = 64 * 1024;

/**
 * Writes SSE frames in as few writes as it can: the frames queued in one turn of the event loop
 * (the lines one pull from NATS brought) go out in one write instead of one each; a write per
 * line was most of what a log follower cost the gateway. `send` waits while the client is behind
 * on what was written (or until `signal` aborts), so a slow client holds its reader back instead
 * of filling the gateway's memory.
 */
export class SseWriter {
  private buffered = '';
  private scheduled?: NodeJS.Immediate;
  private behind?: Promise<void>;

  constructor(
    private readonly res: Response,
    private readonly signal: AbortSignal,
  ) {}

  async send(frame: string): Promise<void> {
    this.buffered += frame;
    if (this.buffered.length >= SSE_BATCH_BYTES) this.flush();
    else this.scheduled ??= setImmediate(() => this.flush());
    if (this.behind) await this.behind;
  }

  /** Writes what is queued now. */
  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (!this.buffered || this.res.writableEnded) return;
    const ok = this.res.write(this.buffered);
    this.buffered = '';
    if (!ok && !this.behind) this.behind = drained(this.res, this.signal).then(() => (this.behind = undefined));
  }
}
