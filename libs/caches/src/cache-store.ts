import { realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StorageType } from '@nats-io/jetstream';
// Loaded when a store is opened (a step that uses it): most agents never do.
import type { ObjectInfo, ObjectStore } from '@nats-io/obj';
import type { JetStreamContext } from '@conveyor/jetstream';
import { CacheError } from './cache-rules';

/** A cache entry as `GET /caches` lists it. */
export interface CacheEntry {
  key: string;
  size: number;
  created: string;
  lastUsed: string;
  /** The run that saved it. */
  run: string;
}

export interface CacheLimits {
  /** Largest entry (its tar.gz). */
  maxEntryBytes: number;
  /** All entries together: the least recently used go first. */
  maxTotalBytes: number;
  /** Entries not used this long are dropped. */
  maxAgeMs: number;
}

export type Restored = { hit: 'exact' | 'partial'; key: string; size: number } | { hit: 'miss' };
export type Saved = { saved: true; size: number } | { saved: false; why: string };

/**
 * Build caches in the JetStream Object Store (bucket `<prefix>-caches`): one tar.gz per key.
 * A key is written once (a put fenced on "no entry yet", so two runs saving one key at once store
 * one entry and the other's chunks are purged); entries are evicted by last use and total size
 * here, not by the stream's age limit, because a restore rewrites an entry's metadata (its last
 * use) and the stream would otherwise age its chunks out from under it.
 */
export class CacheStore {
  private constructor(
    readonly os: ObjectStore,
    private readonly limits: CacheLimits,
  ) {}

  static async open(ctx: JetStreamContext): Promise<CacheStore> {
    const os = await new (require('@nats-io/obj') as typeof import('@nats-io/obj')).Objm(ctx.js).create(ctx.subjects.bucket('caches'), {
      description: 'Build caches: one tar.gz per key',
      storage: StorageType.File,
      replicas: ctx.config.replicas,
    });
    return new CacheStore(os, ctx.config.caches);
  }

  async list(): Promise<CacheEntry[]> {
    return (await this.os.list()).filter((o) => !o.deleted).map(toEntry).sort((a, b) => b.lastUsed.localeCompare(a.lastUsed));
  }

  async delete(key: string): Promise<boolean> {
    const found = await this.os.info(key);
    if (!found || found.deleted) return false;
    await this.os.delete(key);
    return true;
  }

  /**
   * Restores the entry of `key`, or else the most recently used entry whose key starts with one
   * of `restoreKeys` (the longest prefix first), into `dir`. Extraction never writes outside `dir`
   * or through a symlink in it (node-tar's checks), and a corrupt entry (digest mismatch) fails.
   */
  async restore(key: string, restoreKeys: string[], dir: string): Promise<Restored> {
    let chosen: ObjectInfo | undefined;
    let hit: 'exact' | 'partial' = 'exact';
    const exact = await this.os.info(key);
    if (exact && !exact.deleted) chosen = exact;
    else if (restoreKeys.length) {
      const all = (await this.os.list()).filter((o) => !o.deleted);
      for (const prefix of [...restoreKeys].sort((a, b) => b.length - a.length)) {
        const matches = all.filter((o) => o.name.startsWith(prefix)).sort((a, b) => lastUsed(b).localeCompare(lastUsed(a)));
        if (matches.length) {
          chosen = matches[0];
          hit = 'partial';
          break;
        }
      }
    }
    if (!chosen) return { hit: 'miss' };
    const got = await this.os.get(chosen.name);
    if (!got) return { hit: 'miss' };
    await pipeline(Readable.fromWeb(got.data as unknown as import('node:stream/web').ReadableStream<Uint8Array>), tarLib().x({ cwd: dir, strict: true, preservePaths: false }));
    const error = await got.error;
    if (error) throw new CacheError(`cache ${JSON.stringify(chosen.name)} could not be read back: ${error.message}`);
    await this.os.update(chosen.name, { metadata: { ...(chosen.metadata ?? {}), lastUsed: new Date().toISOString() } }).catch(() => undefined);
    return { hit, key: chosen.name, size: chosen.size };
  }

  /** Saves `paths` of `dir` (those that exist) under `key`, unless an entry of that key exists by then; then evicts what the limits say. */
  async save(key: string, paths: string[], dir: string, runId: string): Promise<Saved> {
    const present: string[] = [];
    const root = await realpath(dir);
    for (const p of paths) {
      const real = await realpath(join(dir, p)).catch(() => undefined);
      if (real === undefined) continue;
      // A path through a symlink out of the workspace (`deps -> /etc`, then `deps/shadow`) would have
      // the agent archive a file of the host for the build to read back.
      if (!real.startsWith(root + sep)) throw new CacheError(`cache path ${JSON.stringify(p)} leads outside the workspace (through a symlink); not saved`);
      present.push(p);
    }
    if (!present.length) return { saved: false, why: `none of ${paths.join(', ')} exists` };
    const current = await this.os.info(key);
    if (current && !current.deleted) return { saved: false, why: 'saved by another run meanwhile' };
    const now = new Date().toISOString();
    const archive = Readable.from(tarLib().c({ gzip: true, cwd: dir, portable: true, follow: false }, present)).pipe(limitBytes(this.limits.maxEntryBytes, key));
    try {
      const info = await this.os.put(
        { name: key, metadata: { run: runId, created: now, lastUsed: now } },
        Readable.toWeb(archive) as unknown as ReadableStream<Uint8Array>,
        // Fenced on "no entry of this key" (none ever, or the deleted one seen): two runs saving one key at once store one entry.
        { previousRevision: current?.revision ?? 0 },
      );
      await this.evict().catch(() => undefined);
      return { saved: true, size: info.size };
    } catch (err) {
      if (/wrong last sequence/i.test((err as Error).message)) return { saved: false, why: 'saved by another run meanwhile' };
      throw err;
    }
  }

  /** Drops entries unused for `maxAgeMs`, then the least recently used until all fit `maxTotalBytes`. */
  async evict(now = Date.now()): Promise<string[]> {
    const entries = (await this.os.list()).filter((o) => !o.deleted).sort((a, b) => lastUsed(a).localeCompare(lastUsed(b)));
    let total = entries.reduce((n, o) => n + o.size, 0);
    const dropped: string[] = [];
    for (const o of entries) {
      const old = now - Date.parse(lastUsed(o)) > this.limits.maxAgeMs;
      if (!old && total <= this.limits.maxTotalBytes) continue;
      await this.os.delete(o.name);
      total -= o.size;
      dropped.push(o.name);
    }
    return dropped;
  }
}

function lastUsed(o: ObjectInfo): string {
  return o.metadata?.lastUsed ?? o.mtime;
}

function toEntry(o: ObjectInfo): CacheEntry {
  return { key: o.name, size: o.size, created: o.metadata?.created ?? o.mtime, lastUsed: lastUsed(o), run: o.metadata?.run ?? '' };
}

/** Fails the stream (so the put fails and its chunks are purged) past `max` bytes. */
function limitBytes(max: number, key: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > max) return done(new CacheError(`cache ${JSON.stringify(key)} is over the limit of ${max} bytes an entry (CONVEYOR_CACHE_MAX_BYTES); not saved`));
      done(null, chunk);
    },
  });
}

function tarLib(): typeof import('tar') {
  return require('tar') as typeof import('tar');
}
