import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { authHeaders } from './client';

/**
 * A Server-Sent Events stream read with fetch rather than EventSource: it can send the API
 * token as a header (EventSource cannot), and reconnecting is ours to do, always with the id
 * of the last event handled as `Last-Event-ID`, so a dropped connection resumes exactly where
 * it stopped: no line missed, none twice. Stops on `stop()`, after an `until` event, and on a
 * 4xx other than 429 (which a retry would not change).
 */
/** How long reading a stream may hold the page before it lets it draw (about half a frame). */
const YIELD_MS = 8;

export interface EventStreamOptions {
  path: string;
  /** Resume after this event id from the start (e.g. what was already loaded). */
  lastEventId?: string;
  onEvent: (event: string, data: string, id: string | undefined) => void;
  /** `open` after each (re)connect, `retrying` with the reason while it waits to reconnect. */
  onState?: (state: 'open' | 'retrying' | 'closed', detail?: string) => void;
  /** Stop for good after an event of this name (the log stream's `end`). */
  until?: string;
}

export interface EventStream {
  stop(): void;
  /** The id of the last event handled (what a reconnect sends). */
  lastEventId(): string | undefined;
}

export function openEventStream(o: EventStreamOptions): EventStream {
  const abort = new AbortController();
  let last = o.lastEventId;
  let retryMs = 1000;
  let stopped = false;

  const run = async () => {
    while (!stopped) {
      let reason = '';
      try {
        const res = await fetch(o.path, {
          signal: abort.signal,
          headers: { Accept: 'text/event-stream', ...authHeaders(), ...(last ? { 'Last-Event-ID': last } : {}) },
          cache: 'no-store',
        });
        if (res.status >= 400 && res.status < 500 && res.status !== 429) {
          o.onState?.('closed', `${res.status} ${await res.text().catch(() => '')}`);
          return;
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        o.onState?.('open');
        let ended = false;
        const parser = createParser({
          onEvent: (m: EventSourceMessage) => {
            if (stopped || ended) return;
            if (m.id !== undefined) last = m.id;
            o.onEvent(m.event ?? 'message', m.data, m.id);
            if (o.until && m.event === o.until) ended = true;
          },
          onRetry: (ms) => {
            retryMs = Math.min(Math.max(ms, 250), 30_000);
          },
        });
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let busySince = performance.now();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.feed(value);
          // A read of data already buffered resolves at once (a microtask): a stream that arrives
          // faster than it is parsed would never let the page draw. Yield every YIELD_MS.
          if (performance.now() - busySince > YIELD_MS) {
            await new Promise((r) => setTimeout(r, 0));
            busySince = performance.now();
          }
          if (ended) {
            await reader.cancel().catch(() => undefined);
            stopped = true;
            o.onState?.('closed');
            return;
          }
        }
        reason = 'the gateway closed the stream';
      } catch (err) {
        if (stopped || abort.signal.aborted) return;
        reason = (err as Error).message;
      }
      if (stopped) return;
      o.onState?.('retrying', reason);
      await new Promise((r) => setTimeout(r, retryMs));
    }
  };
  void run();
  return {
    stop() {
      stopped = true;
      abort.abort();
    },
    lastEventId: () => last,
  };
}
