import { HttpException, Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type { Response } from 'express';
import type { KvWatchEntry } from '@nats-io/kv';
import type { ConveyorConfig } from '@conveyor/config';
import { CONVEYOR_CONFIG } from '@conveyor/jetstream';
import { RunsStore } from '@conveyor/store';
import { drained, openSse } from '../common/sse';

/**
 * Changes a slow client may leave queued before its stream is ended: the watch pushes them
 * into memory whatever the client takes. Ended, the client reconnects with Last-Event-ID and
 * resumes where it was, so nothing is lost but our memory is bounded.
 */
const MAX_QUEUED = 10_000;

/**
 * `GET /runs/events`: run record changes as Server-Sent Events, from a watch of the runs
 * bucket. The event id is the KV revision, so `Last-Event-ID` resumes without a gap or a
 * duplicate. Each stream holds a watch (an ephemeral consumer), hence the cap per gateway.
 */
@Injectable()
export class RunFeeds implements OnModuleDestroy {
  private readonly log = new Logger(RunFeeds.name);
  /** Open streams, ended when the app shuts down (they would otherwise keep it alive). */
  private readonly streams = new Set<AbortController>();

  constructor(
    private readonly runs: RunsStore,
    @Inject(CONVEYOR_CONFIG) private readonly config: ConveyorConfig,
  ) {}

  onModuleDestroy(): void {
    for (const s of this.streams) s.abort();
  }

  async stream(res: Response, opts: { runId?: string; lastEventId?: string }): Promise<void> {
    const max = this.config.http.sseMaxRunFeeds;
    if (this.streams.size >= max) {
      throw new HttpException({ message: `this gateway already serves ${this.streams.size} run feeds (CONVEYOR_SSE_MAX_RUN_FEEDS=${max}); close one or try again later` }, 429);
    }
    const afterRevision = opts.lastEventId && /^\d{1,15}$/.test(opts.lastEventId) ? Number(opts.lastEventId) : undefined;
    // The place is taken before the watch is made, so concurrent requests cannot pass the cap.
    const abort = new AbortController();
    this.streams.add(abort);
    res.on('close', () => abort.abort());
    let stopPings = () => {};
    try {
      // Made before the headers go out: once the client sees the stream open, no change is missed.
      const watch = await this.runs.watch({ runId: opts.runId, afterRevision });
      const stop = () => watch.stop();
      if (abort.signal.aborted) stop();
      else abort.signal.addEventListener('abort', stop, { once: true });
      stopPings = openSse(res);
      for await (const e of watch) {
        const frame = runFrame(e);
        if (frame && !res.write(frame)) await drained(res, abort.signal);
        if (abort.signal.aborted) break;
        if (watch.getPending() > MAX_QUEUED) {
          this.log.warn(`a run feed's client is ${watch.getPending()} changes behind: ending its stream (it resumes with Last-Event-ID)`);
          break;
        }
      }
      abort.signal.removeEventListener('abort', stop);
      watch.stop();
    } catch (err) {
      // Before the headers went out (no NATS), the error filter answers it.
      if (!res.headersSent) throw err;
      if (!abort.signal.aborted) res.write(`event: error\ndata: ${JSON.stringify({ message: (err as Error).message })}\n\n`);
    } finally {
      stopPings();
      this.streams.delete(abort);
      if (res.headersSent) res.end();
    }
  }
}

/** One change as an event; a value that is not a run record's JSON is skipped. */
function runFrame(e: KvWatchEntry): string | undefined {
  if (e.operation === 'DEL' || e.operation === 'PURGE') return `id: ${e.revision}\nevent: deleted\ndata: ${JSON.stringify({ id: e.key })}\n\n`;
  let run: unknown;
  try {
    run = e.json();
  } catch {
    return undefined;
  }
  // Stringified again: one line of data, whatever whitespace the stored JSON had.
  return `id: ${e.revision}\nevent: run\ndata: ${JSON.stringify(run)}\n\n`;
}
