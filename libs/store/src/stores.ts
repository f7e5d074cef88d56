import { KvWatchInclude, type KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';
import type { ResourceDefinition, Pipeline, Resource, Run } from '@conveyor/contracts';
import type { Buckets } from '@conveyor/jetstream';
import { ConflictError, NotFoundError, isWrongRevision } from './errors';
import { RunIndex } from './run-index';
import { JsonKv, type Versioned } from './json-kv';

export class DefinitionsStore extends JsonKv<ResourceDefinition> {
  constructor(buckets: Buckets) {
    super(buckets.definitions, 'resource definition');
  }
}

export class PipelinesStore extends JsonKv<Pipeline> {
  constructor(buckets: Buckets) {
    super(buckets.pipelines, 'pipeline');
  }
}

/**
 * Resources keep every version. Keys (names cannot contain dots, so these never collide):
 *   <type>.<name>            the head: the latest version, whole
 *   <type>.<name>.<version>  each version the head moved past, whole, kept until the resource is deleted
 * The head is the lock: a new version is claimed by a compare-and-set on the head. Before
 * that, the version it replaces is copied out (a version never changes, so writing its copy
 * again, or for a claim that then loses, is harmless): a writer that stops between the two
 * writes loses no version, and a new resource is one write, on the way to its first run.
 * A reader of the latest version finds it in the head. Stores written before this kept a
 * copy of the latest version too; readers do not mind.
 */
export class ResourcesStore {
  private readonly kv: JsonKv<Resource>;

  constructor(buckets: Buckets) {
    this.kv = new JsonKv<Resource>(buckets.resources, 'resource');
  }

  private static head(type: string, name: string): string {
    return `${type}.${name}`;
  }

  async create(resource: Resource): Promise<Resource> {
    const first = { ...resource, version: 1 };
    await this.kv.create(ResourcesStore.head(resource.resource, resource.name), first);
    return first;
  }

  async latest(type: string, name: string): Promise<Versioned<Resource> | undefined> {
    return this.kv.get(ResourcesStore.head(type, name));
  }

  async require(type: string, name: string): Promise<Versioned<Resource>> {
    const found = await this.latest(type, name);
    if (!found) throw new NotFoundError(`resource "${name}" of type "${type}" not found`);
    return found;
  }

  async version(type: string, name: string, version: number): Promise<Resource | undefined> {
    const head = ResourcesStore.head(type, name);
    const [latest, copy] = await Promise.all([this.kv.get(head), this.kv.get(`${head}.${version}`)]);
    if (!latest) return undefined;
    if (version === latest.value.version) return latest.value;
    // Only a version the head moved past: a copy beyond it is an update's that lost to a delete
    // (written before its compare-and-set failed), left from the resource before this one.
    return version < latest.value.version ? copy?.value : undefined;
  }

  /**
   * Writes a new version built by `next` from the latest one. With `expectedVersion`, fails
   * with ConflictError unless the latest version is that one; without it, a concurrent
   * writer simply makes its version first and ours becomes the one after.
   */
  async update(type: string, name: string, next: (latest: Resource) => Resource, expectedVersion?: number): Promise<Resource> {
    const head = ResourcesStore.head(type, name);
    for (let attempt = 0; attempt < 20; attempt++) {
      const cur = await this.require(type, name);
      if (expectedVersion !== undefined && cur.value.version !== expectedVersion) {
        throw new ConflictError(`resource "${name}" is at version ${cur.value.version}, not ${expectedVersion}`);
      }
      const value = { ...next(cur.value), version: cur.value.version + 1 };
      await this.kv.kv.put(`${head}.${cur.value.version}`, JSON.stringify(cur.value));
      try {
        await this.kv.kv.update(head, JSON.stringify(value), cur.revision);
      } catch (err) {
        if (!isWrongRevision(err)) throw err;
        if (expectedVersion !== undefined) throw new ConflictError(`resource "${name}" was changed by someone else; read it again and retry`);
        continue;
      }
      return value;
    }
    throw new ConflictError(`resource "${name}" is being changed too often; try again`);
  }

  /** Latest version of every resource of a type. */
  async list(type: string): Promise<Resource[]> {
    return (await this.kv.list(`${type}.*`)).map((v) => v.value);
  }

  async listAll(): Promise<Resource[]> {
    return (await this.kv.list('*.*')).map((v) => v.value);
  }

  /** Removes the resource and every stored version. */
  async delete(type: string, name: string, expectedVersion?: number): Promise<void> {
    const cur = await this.require(type, name);
    if (expectedVersion !== undefined && cur.value.version !== expectedVersion) {
      throw new ConflictError(`resource "${name}" is at version ${cur.value.version}, not ${expectedVersion}`);
    }
    const head = ResourcesStore.head(type, name);
    await this.kv.delete(head, cur.revision);
    // The head is gone first, so nobody can add a version while we purge the copies.
    for (const key of await this.kv.keys(`${head}.*`)) await this.kv.kv.purge(key);
    await this.kv.kv.purge(head);
  }
}

/** A page of runs, newest first, and how it was read. */
export interface RunsPage {
  runs: Run[];
  /** Run records read for it. */
  scanned: number;
  /** The scan stopped at `maxScan` with fewer than `limit` matches and older runs left unread. */
  partial: boolean;
}

/** Run records `page()` reads at most unless told otherwise (CONVEYOR_RUNS_LIST_SCAN). */
export const DEFAULT_RUNS_SCAN = 5000;
/** Values read at once while a filter looks for matches. */
const FILTER_BATCH = 128;

export class RunsStore extends JsonKv<Run> {
  constructor(
    buckets: Buckets,
    private readonly index: RunIndex,
  ) {
    super(buckets.runs, 'run');
  }

  /** Stores the run's index entry, then its record (see RunIndex); ConflictError when it exists. */
  override async create(key: string, value: Run): Promise<number> {
    await this.index.add(key);
    return super.create(key, value);
  }

  /** Newest first (see `page`). */
  async recent(limit: number, filter?: (run: Run) => boolean): Promise<Run[]> {
    return (await this.page(limit, { filter })).runs;
  }

  /**
   * The newest runs, in the order they were made, read from the end of the run index and never
   * all of it (see RunIndex): values are read from the newest down, in the index's batches,
   *  - without a filter, until `limit` are found (entries of runs gone are skipped);
   *  - with one, until `limit` match, at most `maxScan` records in all; `partial` says the scan
   *    stopped there with older runs unread.
   * `before` (a run id) pages on: only runs made before it are looked at.
   */
  async page(limit: number, opts: { filter?: (run: Run) => boolean; maxScan?: number; before?: string } = {}): Promise<RunsPage> {
    const { filter, before } = opts;
    const maxScan = Math.max(limit, opts.maxScan ?? DEFAULT_RUNS_SCAN);
    const runs: Run[] = [];
    let scanned = 0;
    let partial = false;
    for await (const wanted of this.index.newest(before)) {
      for (let i = 0; i < wanted.length && runs.length < limit; ) {
        if (scanned >= maxScan) {
          partial = true;
          break;
        }
        // Without a filter, only as many as are still missing; with one, a whole batch.
        const take = Math.min(filter ? FILTER_BATCH : limit - runs.length, wanted.length - i, maxScan - scanned);
        const batch = wanted.slice(i, i + take);
        i += take;
        scanned += batch.length;
        for (const r of await Promise.all(batch.map((k) => this.get(k)))) {
          if (r && (!filter || filter(r.value)) && runs.length < limit) runs.push(r.value);
        }
      }
      if (runs.length >= limit || partial) break;
    }
    return { runs, scanned, partial };
  }

  /**
   * Changes of run records (of one run with `runId`) as the bucket stores them, each with its
   * revision. After `afterRevision`: every revision stored since, none twice (a revision
   * superseded in the bucket's history is skipped, its key's later one comes); without it,
   * only changes from now on. The watch is live when this resolves; `stop()` ends it.
   */
  watch(opts: { runId?: string; afterRevision?: number } = {}): Promise<QueuedIterator<KvWatchEntry>> {
    const { runId, afterRevision } = opts;
    return this.kv.watch(
      afterRevision === undefined
        ? { key: runId ?? '>', include: KvWatchInclude.UpdatesOnly }
        : { key: runId ?? '>', include: KvWatchInclude.AllHistory, resumeFromRevision: afterRevision + 1 },
    );
  }
}
