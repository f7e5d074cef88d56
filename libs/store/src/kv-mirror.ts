import { KvWatchInclude, type KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';
import type { JsonKv, Versioned } from './json-kv';

/** How soon a watch that ended (its connection closed, the bucket went away) is made again. */
const REWATCH_MS = 1_000;

/** What a mirror holds of a key: its value (none: deleted) at a revision. */
interface Held<T> {
  value?: T;
  revision: number;
}

/**
 * A bucket's values held in memory, kept by a watch of the bucket: for a read on every run's
 * start (its resource definition and pipeline), which then costs no round trip to NATS.
 *
 * - A write this process makes through the store is held at once (JsonKv.onWrite): its own
 *   next read sees it. A write through another process arrives with the watch, milliseconds
 *   later; until then the value before it is read.
 * - Each key keeps the newest revision seen (by the watch, a write or a read), so a watch that
 *   lags behind a write never puts an older value back.
 * - A key not held is read from the bucket (a key written elsewhere an instant ago, or one that
 *   does not exist). While no watch is live, every read goes to the bucket.
 *
 * Values are frozen: they are shared by every reader.
 */
export class KvMirror<T> {
  private readonly held = new Map<string, Held<T>>();
  private watch?: QueuedIterator<KvWatchEntry>;
  private watching = false;
  private stopped = false;
  private following?: Promise<void>;
  private rewatch?: NodeJS.Timeout;
  private readonly unlisten: () => void;

  constructor(
    private readonly store: JsonKv<T>,
    /** What the bucket holds, for messages ("pipelines"). */
    private readonly what: string,
    private readonly warn: (message: string) => void = () => undefined,
  ) {
    this.unlisten = store.onWrite((key, value, revision) => {
      if (!this.watching) return;
      // A delete whose revision is not known: read the key again next time.
      if (revision === undefined) this.held.delete(key);
      else if (value === undefined) this.deleted(key, revision);
      // A copy: the writer keeps its own object, and may change it.
      else this.hold(key, structuredClone(value), revision);
    });
  }

  /** Starts the watch; resolves once it is made (its first values come after). */
  async start(): Promise<void> {
    const watch = await this.store.kv.watch({ key: '>', include: KvWatchInclude.LastValue });
    // Stopped while the watch was being made (at shutdown, or while it was made again).
    if (this.stopped) return watch.stop();
    this.watch = watch;
    this.watching = true;
    this.following = this.follow(watch);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.rewatch);
    this.unlisten();
    this.watch?.stop();
    await this.following;
  }

  async get(key: string): Promise<Versioned<T> | undefined> {
    const known = this.watching ? this.held.get(key) : undefined;
    if (known) return known.value === undefined ? undefined : { value: known.value, revision: known.revision };
    const read = await this.store.get(key);
    if (read && this.watching) this.hold(key, read.value, read.revision);
    return read;
  }

  private async follow(watch: QueuedIterator<KvWatchEntry>): Promise<void> {
    try {
      for await (const e of watch) {
        let value: T | undefined;
        if (e.operation === 'PUT') {
          try {
            value = e.json<T>();
          } catch {
            // Not JSON (written by hand): not held, so a read asks the bucket and reports it.
            this.held.delete(e.key);
            continue;
          }
        }
        this.hold(e.key, value, e.revision);
      }
    } catch (err) {
      this.warn(`the watch of ${this.what} ended: ${(err as Error).message}; reading them from NATS until it is made again`);
    } finally {
      // Nothing held is trusted without a watch: reads go to the bucket until one is live again.
      this.watching = false;
      this.held.clear();
      if (!this.stopped) this.rewatch = setTimeout(() => void this.start().catch((err) => this.warn(`could not watch ${this.what} again: ${(err as Error).message}`)), REWATCH_MS);
    }
  }

  /**
   * A delete of what was at `replaced` (its own revision is not known): newer than that, so it
   * replaces what is held at that revision, and the watch's older values stay out.
   */
  private deleted(key: string, replaced: number): void {
    const known = this.held.get(key);
    if (!known || known.revision <= replaced) this.held.set(key, { revision: replaced });
  }

  private hold(key: string, value: T | undefined, revision: number): void {
    const known = this.held.get(key);
    if (known && known.revision >= revision) return;
    this.held.set(key, { value: value === undefined ? undefined : deepFreeze(value), revision });
  }
}

function deepFreeze<V>(value: V): V {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
