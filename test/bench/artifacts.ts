import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Objm } from '@nats-io/obj';
import { ArtifactStore } from '@conveyor/artifacts';
import { loadConfig } from '@conveyor/config';
import { newRunId } from '@conveyor/contracts';
import { connectJetStream } from '@conveyor/jetstream';
import type { Api } from '../support/api';
import type { NatsServer } from '../support/nats-server';
import { monotonicMs as now } from '../drivers/behaviours';
import { rssBytes } from './cpu';

const MB = Number(process.env.BENCH_ARTIFACT_MB ?? 100);
const ROUNDS = Number(process.env.BENCH_ARTIFACT_ROUNDS ?? 3);

/**
 * A 100 MB artifact: kept the way the builder keeps it (ArtifactStore.upload: a file opened
 * without following links, streamed into the Object Store) against a raw `put` of the same file
 * with the @nats-io/obj client; fetched through the gateway (GET /runs/:id/artifacts/:name) against
 * a raw `get` in this process; and the gateway's resident memory while it streams the file.
 */
export async function benchArtifacts(api: Api, nats: NatsServer, gatewayPid: number): Promise<string[][]> {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-bench-art-'));
  const file = join(dir, 'payload.bin');
  const bytes = randomBytes(MB * 1024 * 1024);
  writeFileSync(file, bytes);
  const digest = createHash('sha256').update(bytes).digest('hex');
  const ctx = await connectJetStream(loadConfig({ CONVEYOR_NATS_URL: nats.url }));
  try {
    const store = await ArtifactStore.open(ctx);
    const raw = await new Objm(ctx.js).create('bench-raw');
    const up: number[] = [];
    const rawUp: number[] = [];
    const down: number[] = [];
    const rawDown: number[] = [];
    let peak = 0;
    const before = rssBytes(gatewayPid);
    let runid = '';
    for (let i = 0; i < ROUNDS; i++) {
      runid = newRunId();
      let t = now();
      const [kept] = await store.upload(runid, 'build', [{ name: 'payload.bin', path: file, size: bytes.length }]);
      up.push(now() - t);
      if (kept.sha256 !== digest) throw new Error('the uploaded artifact has another digest');
      t = now();
      // As `nats object put <file>` does: the file read and streamed in.
      await raw.put({ name: `payload-${i}` }, Readable.toWeb(createReadStream(file, { highWaterMark: 1024 * 1024 })) as unknown as ReadableStream<Uint8Array>);
      rawUp.push(now() - t);

      const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(gatewayPid))), 20);
      t = now();
      const res = await fetch(`${api.baseUrl}/runs/${runid}/artifacts/payload.bin`);
      const hash = createHash('sha256');
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
      down.push(now() - t);
      clearInterval(sampler);
      if (hash.digest('hex') !== digest) throw new Error('the downloaded artifact differs');
      t = now();
      const got = await raw.get(`payload-${i}`);
      const rawHash = createHash('sha256');
      for await (const chunk of got!.data as unknown as AsyncIterable<Uint8Array>) rawHash.update(chunk);
      rawDown.push(now() - t);
    }
    const best = (xs: number[]) => Math.min(...xs);
    const mbps = (ms: number) => (MB / (ms / 1000)).toFixed(0);
    await raw.destroy();
    return [
      [`artifact upload, ${MB} MB (MB/s, best of ${ROUNDS})`, mbps(best(up)), mbps(best(rawUp)), `${(best(rawUp) / best(up)).toFixed(2)}x a raw Object Store put of the file (target >= 0.8x)`],
      [`artifact download via the gateway, ${MB} MB (MB/s)`, mbps(best(down)), mbps(best(rawDown)), `${(best(rawDown) / best(down)).toFixed(2)}x a raw Object Store get in one process (target >= 0.8x)`],
      ['gateway RSS while streaming it (MB)', (peak / 1e6).toFixed(0), (before / 1e6).toFixed(0), `+${((peak - before) / 1e6).toFixed(0)} MB over its RSS before (the file is ${MB} MB)`],
    ];
  } finally {
    await ctx.nc.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
