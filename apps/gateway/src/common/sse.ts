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
