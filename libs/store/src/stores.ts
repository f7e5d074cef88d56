import type { ResourceDefinition, Pipeline, Resource, Run } from '@conveyor/contracts';
import type { Buckets } from '@conveyor/jetstream';
import { ConflictError, NotFoundError, isWrongRevision } from './errors';
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
 *   <type>.<name>.<version>  each version, whole, kept until the resource is deleted
 * The head is the lock: a new version is claimed by a compare-and-set on the head, then
 * its copy is written. A reader of a version whose copy is not written yet falls back to
 * the head, which holds it.
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
    const head = ResourcesStore.head(resource.resource, resource.name);
    const first = { ...resource, version: 1 };
    await this.kv.create(head, first);
    await this.kv.kv.put(`${head}.1`, JSON.stringify(first));
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
    const copy = await this.kv.get(`${head}.${version}`);
    if (copy) return copy.value;
    const latest = await this.kv.get(head);
    return latest?.value.version === version ? latest.value : undefined;
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
      try {
        await this.kv.kv.update(head, JSON.stringify(value), cur.revision);
      } catch (err) {
        if (!isWrongRevision(err)) throw err;
        if (expectedVersion !== undefined) throw new ConflictError(`resource "${name}" was changed by someone else; read it again and retry`);
        continue;
      }
      await this.kv.kv.put(`${head}.${value.version}`, JSON.stringify(value));
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

export class RunsStore extends JsonKv<Run> {
  constructor(buckets: Buckets) {
    super(buckets.runs, 'run');
  }

  /** Newest first. Run ids are time-ordered, so key order is creation order. */
  async recent(limit: number, filter?: (run: Run) => boolean): Promise<Run[]> {
    const keys = (await this.keys()).sort().reverse();
    const out: Run[] = [];
    for (let i = 0; i < keys.length && out.length < limit; i += 64) {
      const batch = await Promise.all(keys.slice(i, i + 64).map((k) => this.get(k)));
      for (const r of batch) if (r && (!filter || filter(r.value)) && out.length < limit) out.push(r.value);
    }
    return out;
  }
}
