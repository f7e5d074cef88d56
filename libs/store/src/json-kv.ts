import type { KV, KvEntry } from '@nats-io/kv';
import { listKeys } from '@conveyor/jetstream';
import { ConflictError, NotFoundError, isWrongRevision } from './errors';

/** A stored value with the KV revision it was read at: the handle for optimistic concurrency. */
export interface Versioned<T> {
  value: T;
  revision: number;
}

/** A write that was stored: its value (undefined: deleted) and revision (for a delete, the revision it replaced, when known). */
export type WriteListener<T> = (key: string, value: T | undefined, revision: number | undefined) => void;

const live = (e: KvEntry | null): e is KvEntry => e !== null && e.operation === 'PUT';

/**
 * JSON values in a KV bucket, with compare-and-set on every write. A write that names a
 * revision fails with ConflictError when someone else wrote in between; nothing is ever
 * overwritten silently.
 */
export class JsonKv<T> {
  private readonly writeListeners = new Set<WriteListener<T>>();

  constructor(
    readonly kv: KV,
    private readonly what: string,
  ) {}

  /** Told of every write this object makes, once stored (see KvMirror); returns how to stop. */
  onWrite(listener: WriteListener<T>): () => void {
    this.writeListeners.add(listener);
    return () => this.writeListeners.delete(listener);
  }

  private wrote(key: string, value: T | undefined, revision: number | undefined): void {
    for (const listener of this.writeListeners) listener(key, value, revision);
  }

  async get(key: string): Promise<Versioned<T> | undefined> {
    const e = await this.kv.get(key);
    return live(e) ? { value: e.json<T>(), revision: e.revision } : undefined;
  }

  async require(key: string): Promise<Versioned<T>> {
    const found = await this.get(key);
    if (!found) throw new NotFoundError(`${this.what} "${key}" not found`);
    return found;
  }

  /** Creates a new key; ConflictError when it exists. */
  async create(key: string, value: T): Promise<number> {
    let revision: number;
    try {
      revision = await this.kv.create(key, JSON.stringify(value));
    } catch (err) {
      if (isWrongRevision(err)) throw new ConflictError(`${this.what} "${key}" already exists`);
      throw err;
    }
    this.wrote(key, value, revision);
    return revision;
  }

  /** Replaces the value written at `revision`; ConflictError when it changed since. */
  async update(key: string, value: T, revision: number): Promise<number> {
    let stored: number;
    try {
      stored = await this.kv.update(key, JSON.stringify(value), revision);
    } catch (err) {
      if (isWrongRevision(err)) {
        throw new ConflictError(`${this.what} "${key}" was changed by someone else (revision ${revision} is not the latest); read it again and retry`);
      }
      throw err;
    }
    this.wrote(key, value, stored);
    return stored;
  }

  /**
   * Read-modify-write with a bounded number of compare-and-set retries: for writers
   * that merge rather than replace (e.g. folding run events).
   */
  async mutate(key: string, change: (current: T) => T | undefined, attempts = 20): Promise<T> {
    return (await this.mutateFrom(key, change, undefined, attempts)).value;
  }

  /**
   * `mutate` that starts from `known` (what this writer read or wrote last) instead of reading
   * it, and answers with the revision it stored: a writer that keeps its records saves a read
   * per write. When `known` is stale the compare-and-set fails and the next try reads.
   */
  async mutateFrom(key: string, change: (current: T) => T | undefined, known?: Versioned<T>, attempts = 20): Promise<Versioned<T>> {
    let cur = known;
    for (let i = 0; i < attempts; i++) {
      cur ??= await this.require(key);
      const next = change(cur.value);
      if (next === undefined) return cur;
      let revision: number;
      try {
        revision = await this.kv.update(key, JSON.stringify(next), cur.revision);
      } catch (err) {
        if (!isWrongRevision(err)) throw err;
        cur = undefined;
        continue;
      }
      this.wrote(key, next, revision);
      return { value: next, revision };
    }
    throw new ConflictError(`${this.what} "${key}" is being changed too often; gave up after ${attempts} attempts`);
  }

  async delete(key: string, revision?: number): Promise<void> {
    try {
      await this.kv.delete(key, revision ? { previousSeq: revision } : undefined);
    } catch (err) {
      if (isWrongRevision(err)) throw new ConflictError(`${this.what} "${key}" was changed by someone else; read it again and retry`);
      throw err;
    }
    // The delete's own revision is not returned: what it replaced (when known) is what it is newer than.
    this.wrote(key, undefined, revision);
  }

  /** Keys that match a filter (`>` for all); deleted ones may be among them (`list()` drops them). */
  keys(filter = '>'): Promise<string[]> {
    return listKeys(this.kv, filter);
  }

  async list(filter = '>'): Promise<Versioned<T>[]> {
    const keys = await this.keys(filter);
    const values = await Promise.all(keys.map((k) => this.get(k)));
    return values.filter((v): v is Versioned<T> => v !== undefined);
  }
}
