import { constants } from 'node:fs';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StorageType } from '@nats-io/jetstream';
// Loaded when a store is opened (a step that uses it): most agents never do.
import type { ObjectInfo, ObjectStore } from '@nats-io/obj';
import { nanos } from '@nats-io/transport-node';
import type { JetStreamContext } from '@conveyor/jetstream';
import { ArtifactError, formatBytes, type ArtifactFile } from './artifact-files';

/** An artifact as the API lists it. */
export interface ArtifactInfo {
  name: string;
  step: string;
  size: number;
  /** Hex SHA-256 of the content (the object store's own digest). */
  sha256: string;
  contentType: string;
  created: string;
}

/**
 * Artifacts of runs in the JetStream Object Store (bucket `<prefix>-artifacts`): one object per
 * file, named `<run>/<artifact name>`, with the step that made it in its metadata. Chunked,
 * replicated like the streams, and dropped `CONVEYOR_ARTIFACTS_MAX_AGE` after upload.
 */
export class ArtifactStore {
  private constructor(
    readonly os: ObjectStore,
    private readonly maxRunBytes: number,
  ) {}

  static async open(ctx: JetStreamContext): Promise<ArtifactStore> {
    const c = ctx.config;
    const os = await new (require('@nats-io/obj') as typeof import('@nats-io/obj')).Objm(ctx.js).create(ctx.subjects.bucket('artifacts'), {
      description: "Runs' artifacts: one object per file, named <run>/<path>",
      storage: StorageType.File,
      replicas: c.replicas,
      ttl: nanos(c.artifacts.maxAgeMs),
    });
    return new ArtifactStore(os, c.artifacts.maxRunBytes);
  }

  /** A run's artifacts, by name. */
  async list(runId: string): Promise<ArtifactInfo[]> {
    const prefix = `${runId}/`;
    return (await this.os.list())
      .filter((o) => !o.deleted && o.name.startsWith(prefix))
      .map((o) => toInfo(o, prefix))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async info(runId: string, name: string): Promise<ArtifactInfo | undefined> {
    const o = await this.os.info(`${runId}/${name}`);
    return o && !o.deleted ? toInfo(o, `${runId}/`) : undefined;
  }

  /**
   * Uploads a step's files, checked first as a whole (a name another step of the run keeps, the
   * run's byte limit), so that a refused upload stores nothing. A file is opened without following
   * a symlink put in its place since it was collected, and must still have the size it had.
   */
  async upload(runId: string, stepId: string, files: ArtifactFile[], onEach?: (info: ArtifactInfo, ms: number) => void): Promise<ArtifactInfo[]> {
    const existing = await this.list(runId);
    for (const f of files) {
      const other = existing.find((e) => e.name === f.name && e.step !== stepId);
      if (other) throw new ArtifactError(`artifact ${JSON.stringify(f.name)} is kept by step "${other.step}" of this run already; artifact names are unique in a run`);
    }
    const kept = existing.filter((e) => !files.some((f) => f.name === e.name)).reduce((n, e) => n + e.size, 0);
    const adding = files.reduce((n, f) => n + f.size, 0);
    if (kept + adding > this.maxRunBytes) {
      throw new ArtifactError(`the run's artifacts would add up to ${formatBytes(kept + adding)}, over the limit of ${formatBytes(this.maxRunBytes)} a run (CONVEYOR_ARTIFACTS_MAX_RUN_BYTES)`);
    }
    const out: ArtifactInfo[] = [];
    for (const f of files) {
      const started = Date.now();
      const fh = await open(f.path, constants.O_RDONLY | (f.followed ? 0 : constants.O_NOFOLLOW)).catch((err: NodeJS.ErrnoException) => {
        throw new ArtifactError(`artifact ${JSON.stringify(f.name)} cannot be read: ${err.code === 'ELOOP' ? 'it was replaced by a symlink' : err.message}`);
      });
      try {
        const st = await fh.stat();
        if (!st.isFile() || st.size !== f.size) throw new ArtifactError(`artifact ${JSON.stringify(f.name)} changed while it was being kept (a build step still writing it?)`);
        // 1 MiB reads: the client cuts 128 KiB chunks from them; 64 KiB reads cost a quarter of the throughput.
        const stream = Readable.toWeb(fh.createReadStream({ autoClose: false, highWaterMark: 1024 * 1024 })) as unknown as ReadableStream<Uint8Array>;
        const info = await this.os.put(
          { name: `${runId}/${f.name}`, metadata: { run: runId, step: stepId, contentType: contentTypeOf(f.name) } },
          stream,
        );
        if (info.size !== f.size) throw new ArtifactError(`artifact ${JSON.stringify(f.name)} changed while it was being uploaded`);
        const shown = toInfo(info, `${runId}/`);
        onEach?.(shown, Date.now() - started);
        out.push(shown);
      } finally {
        await fh.close();
      }
    }
    return out;
  }

  /**
   * The object's bytes from `start` to `end` (inclusive), streamed chunk by chunk; undefined when
   * there is no such artifact. A range's leading chunks are read and dropped (the Object Store reads
   * an object from its first chunk), and reading stops after its last byte.
   */
  async read(runId: string, name: string, range?: { start: number; end: number }): Promise<{ info: ArtifactInfo; stream: Readable } | undefined> {
    const result = await this.os.get(`${runId}/${name}`);
    if (!result || result.info.deleted) return undefined;
    const info = toInfo(result.info, `${runId}/`);
    if (!range) return { info, stream: Readable.fromWeb(result.data as unknown as import('node:stream/web').ReadableStream<Uint8Array>, { highWaterMark: 1024 * 1024 }) };
    return { info, stream: Readable.from(slice(result.data, range.start, range.end)) };
  }

  /** Downloads an artifact of the run into `dir` at its name (a later step fetching an earlier one's artifact). */
  async download(runId: string, name: string, dir: string): Promise<ArtifactInfo> {
    const found = await this.read(runId, name);
    if (!found) throw new ArtifactError(`artifact ${JSON.stringify(name)} is not among this run's artifacts`);
    const dest = join(dir, ...name.split('/'));
    if (!dest.startsWith(dir + sep)) throw new ArtifactError(`artifact ${JSON.stringify(name)} names a path outside the workspace`);
    await mkdir(dirname(dest), { recursive: true });
    const partial = `${dest}.conveyor-partial`;
    try {
      // wx: never write through a file or symlink the build put there.
      await pipeline(found.stream, createWriteStream(partial, { flags: 'wx' }));
      await rename(partial, dest);
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
    return found.info;
  }
}

function toInfo(o: ObjectInfo, prefix: string): ArtifactInfo {
  return {
    name: o.name.slice(prefix.length),
    step: o.metadata?.step ?? '',
    size: o.size,
    sha256: digestHex(o.digest),
    contentType: o.metadata?.contentType ?? 'application/octet-stream',
    created: o.mtime,
  };
}

/** The object store's digest (`SHA-256=<base64url>`) as hex. */
export function digestHex(digest: string): string {
  const b64 = digest.replace(/^SHA-256=/i, '');
  return Buffer.from(b64.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('hex');
}

const TYPES: Record<string, string> = {
  txt: 'text/plain; charset=utf-8', log: 'text/plain; charset=utf-8', md: 'text/markdown; charset=utf-8', json: 'application/json', xml: 'application/xml',
  html: 'text/html; charset=utf-8', csv: 'text/csv; charset=utf-8', gz: 'application/gzip', tgz: 'application/gzip', zip: 'application/zip', tar: 'application/x-tar',
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', svg: 'image/svg+xml', pdf: 'application/pdf', wasm: 'application/wasm', deb: 'application/vnd.debian.binary-package',
};

/** By extension; anything else (a binary) is application/octet-stream. */
export function contentTypeOf(name: string): string {
  const ext = /\.([A-Za-z0-9]+)$/.exec(name)?.[1]?.toLowerCase();
  return (ext && TYPES[ext]) || 'application/octet-stream';
}

/** Bytes `start`..`end` (inclusive) of a web stream; the stream is cancelled once they are through (or the reader stops early). */
async function* slice(data: ReadableStream<Uint8Array>, start: number, end: number): AsyncGenerator<Buffer> {
  const reader = data.getReader();
  let pos = 0;
  try {
    while (pos <= end) {
      const { done, value } = await reader.read();
      if (done) return;
      const from = Math.max(start - pos, 0);
      const to = Math.min(end + 1 - pos, value.length);
      pos += value.length;
      if (to > from) yield Buffer.from(value.buffer, value.byteOffset + from, to - from);
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
