import type { LogEntry, LogReader } from './log-reader';

/** Entries a tail keeps for followers that join late or read slowly (about 300 bytes each). */
export const DEFAULT_TAIL_ENTRIES = 10_000;

export interface FollowOptions {
  /** Only lines of this driver (the end marker always comes through). */
  driver?: string;
  /** Resume after this stream sequence (an SSE client's Last-Event-ID). */
  afterSeq?: number;
  signal?: AbortSignal;
}

interface Cursor {
  /** Index of the next entry to take, counted from the tail's first entry ever (trimmed ones too). */
  next: number;
}

interface Tail {
  key: string;
  /** The tail holds every entry after this stream sequence (from `entries[0]`). */
  coveredAfter: number;
  entries: LogEntry[];
  /** Entries dropped from the front so far. */
  trimmed: number;
  followers: Set<Cursor>;
  /** The reader ended: the run's end was read, or it failed (`error`). */
  done: boolean;
  error?: unknown;
  /** Settles when an entry is added or the reader ends; made when someone waits. */
  changed?: { promise: Promise<void>; resolve: () => void };
  stop: AbortController;
}

/**
 * Followers of one run's log share one reader (one NATS consumer) instead of one each: the
 * lines are read and parsed once and handed to every follower from a tail of the last
 * `maxEntries` entries. A follower that joins after what the tail still holds, or falls that far
 * behind, goes on with a reader of its own from its last line, without a gap or a duplicate. The
 * tail's reader stops when its last follower leaves.
 */
export class LogFanout {
  private readonly tails = new Map<string, Tail>();
  /** Followers that read by themselves (joined after what a tail held, or fell behind it). */
  readOnTheirOwn = 0;

  constructor(
    private readonly reader: LogReader,
    private readonly maxEntries = DEFAULT_TAIL_ENTRIES,
  ) {}

  /** Tails being read now (one NATS consumer each). */
  get size(): number {
    return this.tails.size;
  }

  async *follow(runId: string, opts: FollowOptions = {}): AsyncGenerator<LogEntry> {
    const key = `${runId}/${opts.driver ?? ''}`;
    let last = opts.afterSeq && opts.afterSeq > 0 ? opts.afterSeq : 0;
    const own = () => {
      this.readOnTheirOwn++;
      return this.reader.read(runId, { driver: opts.driver, afterSeq: last, follow: true, signal: opts.signal });
    };
    let tail = this.tails.get(key);
    if (tail && last < tail.coveredAfter) {
      yield* own();
      return;
    }
    tail ??= this.start(key, runId, opts.driver, last);
    const cursor: Cursor = { next: tail.trimmed };
    tail.followers.add(cursor);
    // An abort wakes the tail's waiters (each checks its own signal). Not a race against a
    // promise of the abort: each race would leave a reaction on it, one per line waited for.
    const onAbort = () => this.wake(tail);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        if (opts.signal?.aborted) return;
        const i = cursor.next - tail.trimmed;
        if (i < 0) break; // trimmed past it: on with a reader of its own
        if (i < tail.entries.length) {
          const e = tail.entries[i];
          cursor.next++;
          // Taken before (the tail began earlier); but one who resumes after the end is told it again.
          if (e.seq <= last && !('end' in e)) continue;
          last = Math.max(last, e.seq);
          yield e;
          if ('end' in e) return;
          continue;
        }
        if (tail.done) {
          if (tail.error) throw tail.error;
          return;
        }
        await this.changed(tail);
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      this.leave(tail, cursor);
    }
    yield* own();
  }

  private start(key: string, runId: string, driver: string | undefined, afterSeq: number): Tail {
    const tail: Tail = { key, coveredAfter: afterSeq, entries: [], trimmed: 0, followers: new Set(), done: false, stop: new AbortController() };
    this.tails.set(key, tail);
    void (async () => {
      try {
        for await (const e of this.reader.read(runId, { driver, afterSeq, follow: true, signal: tail.stop.signal })) {
          tail.entries.push(e);
          if (tail.entries.length > this.maxEntries) this.trim(tail);
          this.wake(tail);
        }
      } catch (err) {
        tail.error = err;
      } finally {
        tail.done = true;
        this.wake(tail);
      }
    })();
    return tail;
  }

  /** Drops the oldest entries beyond `maxEntries`; a follower that had not taken them reads on by itself. */
  private trim(tail: Tail): void {
    const cut = tail.entries.length - this.maxEntries;
    if (cut <= 0) return;
    tail.coveredAfter = tail.entries[cut - 1].seq;
    tail.entries.splice(0, cut);
    tail.trimmed += cut;
    // Those left behind are woken to notice it.
    this.wake(tail);
  }

  private leave(tail: Tail, cursor: Cursor): void {
    tail.followers.delete(cursor);
    if (tail.followers.size > 0) return;
    tail.stop.abort();
    if (this.tails.get(tail.key) === tail) this.tails.delete(tail.key);
  }

  private changed(tail: Tail): Promise<void> {
    if (!tail.changed) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      tail.changed = { promise, resolve };
    }
    return tail.changed.promise;
  }

  private wake(tail: Tail): void {
    const c = tail.changed;
    tail.changed = undefined;
    c?.resolve();
  }
}
