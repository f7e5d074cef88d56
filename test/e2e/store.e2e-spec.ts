import { connect } from '@nats-io/transport-node';
import { loadConfig } from '@conveyor/config';
import type { CancelSignal } from '@conveyor/contracts';
import { connectJetStream, openBuckets, provisionStreams, type JetStreamContext } from '@conveyor/jetstream';
import { ConflictError, DefinitionsStore, JsonKv, KvMirror, ResourcesStore } from '@conveyor/store';
import { CancelWatch, type StopOrder } from '../../libs/driver-sdk/src/cancel-watch';
import { NatsServer } from '../support/nats-server';
import { waitFor } from '../support/processes';

describe('state store on a real nats-server', () => {
  let nats: NatsServer;
  let ctx: JetStreamContext;

  beforeAll(async () => {
    nats = await NatsServer.start();
    ctx = await connectJetStream(loadConfig({ CONVEYOR_NATS_URL: nats.url }));
    await provisionStreams(ctx);
  });
  afterAll(async () => {
    await ctx?.nc.close();
    await nats?.dispose();
  });

  it('provisions idempotently from several processes at once', async () => {
    const others = await Promise.all([1, 2, 3].map(() => connectJetStream(loadConfig({ CONVEYOR_NATS_URL: nats.url }))));
    await Promise.all(others.map(async (c) => { await provisionStreams(c); await openBuckets(c); }));
    await Promise.all(others.map((c) => c.nc.close()));
    const names: string[] = [];
    for await (const n of ctx.jsm.streams.names()) names.push(n);
    expect(names).toEqual(expect.arrayContaining(['CONVEYOR_RUNS', 'CONVEYOR_LOGS', 'CONVEYOR_DLQ', 'KV_conveyor-runs']));
  });

  it('refuses to start on a store with the older layout\'s STEPS and EVENTS streams, saying what to do, and keeps them', async () => {
    const old = await NatsServer.start();
    const c = await connectJetStream(loadConfig({ CONVEYOR_NATS_URL: old.url, CONVEYOR_PREFIX: 'legacy' }));
    try {
      await c.jsm.streams.add({ name: 'LEGACY_STEPS', subjects: ['legacy.steps.>'] });
      await c.jsm.streams.add({ name: 'LEGACY_EVENTS', subjects: ['legacy.events.>'] });
      await c.js.publish('legacy.steps.builder', 'old work');
      await expect(provisionStreams(c)).rejects.toThrow('holds LEGACY_STEPS and LEGACY_EVENTS from an older Conveyor, whose step subjects overlap LEGACY_RUNS; let its runs finish (or give them up), then remove them: nats stream rm LEGACY_STEPS LEGACY_EVENTS');
      expect((await c.jsm.streams.info('LEGACY_STEPS')).state.messages).toBe(1);
    } finally {
      await c.nc.close();
      await old.dispose();
    }
  });

  it('refuses a write based on a stale revision', async () => {
    const defs = new DefinitionsStore(await openBuckets(ctx));
    const def = { name: 'd', description: '', version: '1', schema: {}, createdAt: '', updatedAt: '' };
    const rev = await defs.create('d', def);
    await expect(defs.create('d', def)).rejects.toBeInstanceOf(ConflictError);
    await defs.update('d', { ...def, version: '2' }, rev);
    await expect(defs.update('d', { ...def, version: '3' }, rev)).rejects.toBeInstanceOf(ConflictError);
    expect((await defs.require('d')).value.version).toBe('2');
  });

  it('mutateFrom writes on what the writer knows without reading it, and reads again when someone wrote in between', async () => {
    const defs = new DefinitionsStore(await openBuckets(ctx));
    const def = { name: 'm', description: '', version: '1', schema: {}, createdAt: '', updatedAt: '' };
    const rev = await defs.create('m', def);
    let reads = 0;
    const sub = ctx.nc.subscribe(`$JS.API.DIRECT.GET.KV_${ctx.subjects.bucket('definitions')}.>`, { callback: () => void reads++ });
    try {
      const bump = (d: typeof def) => ({ ...d, version: String(Number(d.version) + 1) });
      const known = await defs.mutateFrom('m', bump, { value: def, revision: rev });
      await ctx.nc.flush();
      expect([known.value.version, reads]).toEqual(['2', 0]);
      // Another writer moves it on: the stale knowledge fails its compare-and-set, and the change is made on a fresh read.
      await defs.update('m', { ...def, version: '10' }, known.revision);
      const after = await defs.mutateFrom('m', bump, known);
      await ctx.nc.flush();
      expect([after.value.version, reads]).toEqual(['11', 1]);
      expect(await defs.require('m')).toEqual(after);
    } finally {
      sub.unsubscribe();
    }
  });

  it('keeps every version of a resource and numbers concurrent writers apart', async () => {
    const res = new ResourcesStore(await openBuckets(ctx));
    await res.create({ name: 'x', resource: 't', spec: { n: 0 }, metadata: {}, version: 1, createdAt: '' });
    await Promise.all([1, 2, 3, 4, 5].map((n) => res.update('t', 'x', (cur) => ({ ...cur, spec: { n } }))));
    const latest = await res.require('t', 'x');
    expect(latest.value.version).toBe(6);
    const seen = new Set<unknown>();
    for (let v = 1; v <= 6; v++) seen.add((await res.version('t', 'x', v))?.spec.n);
    expect(seen).toEqual(new Set([0, 1, 2, 3, 4, 5]));
    await expect(res.update('t', 'x', (c) => c, 3)).rejects.toBeInstanceOf(ConflictError);
    await res.delete('t', 'x');
    expect(await res.latest('t', 'x')).toBeUndefined();
    expect(await res.version('t', 'x', 2)).toBeUndefined();
  });

  it('writes a new resource once (its head), and keeps a version whole before the head moves past it', async () => {
    const res = new ResourcesStore(await openBuckets(ctx));
    const nc = await connect({ servers: nats.url });
    const writes: string[] = [];
    nc.subscribe('$KV.conveyor-resources.w.>', { callback: (_e, m) => void writes.push(m.subject.replace('$KV.conveyor-resources.', '')) });
    await nc.flush();
    try {
      await res.create({ name: 'y', resource: 'w', spec: { n: 1 }, metadata: {}, version: 1, createdAt: '' });
      await nc.flush();
      // One write on the way to a run's start: version 1 is the head, until a second comes.
      expect(writes).toEqual(['w.y']);
      expect((await res.version('w', 'y', 1))?.spec).toEqual({ n: 1 });
      await res.update('w', 'y', (cur) => ({ ...cur, spec: { n: 2 } }));
      await nc.flush();
      // Version 1 is kept whole first: a writer that stops between the two writes loses no version.
      expect(writes).toEqual(['w.y', 'w.y.1', 'w.y']);
      expect([(await res.version('w', 'y', 1))?.spec, (await res.version('w', 'y', 2))?.spec]).toEqual([{ n: 1 }, { n: 2 }]);
      // An update that lost to a delete wrote its copy before its compare-and-set failed: a
      // resource made again under the name does not show it as one of its versions.
      await res.delete('w', 'y');
      const { resources } = await openBuckets(ctx);
      await resources.put('w.y.2', JSON.stringify({ name: 'y', resource: 'w', spec: { n: 'old' }, metadata: {}, version: 2, createdAt: '' }));
      await res.create({ name: 'y', resource: 'w', spec: { n: 'new' }, metadata: {}, version: 1, createdAt: '' });
      expect([(await res.version('w', 'y', 1))?.spec, await res.version('w', 'y', 2)]).toEqual([{ n: 'new' }, undefined]);
    } finally {
      await nc.close();
    }
  });

  it('a KvMirror holds what its process writes at once: a value, a change, a delete, however far its watch lags', async () => {
    const defs = new DefinitionsStore(await openBuckets(ctx));
    const mirror = new KvMirror(defs, 'resource definitions');
    await mirror.start();
    try {
      const def = { name: 'mirrored', description: '', version: '1', schema: {}, createdAt: '', updatedAt: '' };
      for (let i = 0; i < 20; i++) {
        const key = `mirrored-${i}`;
        const created = await defs.create(key, { ...def, name: key });
        expect((await mirror.get(key))?.revision).toBe(created);
        const updated = await defs.update(key, { ...def, name: key, version: '2' }, created);
        expect((await mirror.get(key))?.value.version).toBe('2');
        await defs.delete(key, updated);
        expect(await mirror.get(key)).toBeUndefined();
      }
    } finally {
      await mirror.stop();
    }
  });

  it('a KvMirror stopped while its watch is being made leaves no watch behind', async () => {
    // A bucket of its own: no other watch's consumer comes or goes while this one is counted.
    const store = new JsonKv<{ n: number }>(await ctx.kvm.create('mirror-stop'), 'numbers');
    // A watch is a push consumer: "push bound" while something subscribes to what it delivers.
    // The server says so a moment after the subscription comes or goes: waited for, up to 5 s.
    const watched = async () => (await ctx.jsm.consumers.list('KV_mirror-stop').next()).filter((c) => c.push_bound).length;
    const becomes = (n: number) => waitFor(`${n} watch(es) of the bucket`, async () => ((await watched()) === n ? true : undefined), 5_000);
    const mirror = new KvMirror(store, 'numbers');
    await mirror.start();
    await becomes(1);
    await mirror.stop();
    await becomes(0);
    const again = new KvMirror(store, 'numbers');
    const starting = again.start();
    await again.stop();
    await starting;
    // Bound within milliseconds above: none may show up over a second.
    const seen: number[] = [];
    for (let i = 0; i < 20; i++) {
      seen.push(await watched());
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(Math.max(...seen)).toBe(0);
  });

  it("an agent's cancel watch holds at most its cap of stop orders, the newest", async () => {
    const { cancels } = await openBuckets(ctx);
    const ids = Array.from({ length: 30 }, (_, i) => `run${String(i).padStart(3, '0')}`);
    for (const id of ids) await cancels.put(id, JSON.stringify({ at: new Date().toISOString() }));
    const told: string[] = [];
    const watch = new CancelWatch((runId: string, _order: StopOrder) => told.push(runId), { maxEntries: 10 });
    await watch.start(ctx, cancels);
    try {
      expect(told).toEqual(ids);
      expect(watch.size).toBe(10);
      expect(watch.get(ids[19])).toBeUndefined();
      expect(watch.get(ids[20])).toEqual({ status: 'cancelled', message: 'the run was cancelled' });
      expect(watch.get(ids[29])).toBeDefined();
      // Live orders: the core signal and the bucket (as POST /runs/:id/cancel sends them). Its
      // run ids are short stand-ins, not run ids: the wire check says so, as expected.
      nats.wire?.expectViolations(/^conveyor\.control\.run\d+\.cancel$/);
      for (let i = 30; i < 40; i++) {
        const id = `run${i}`;
        const signal: CancelSignal = { runId: id, at: new Date().toISOString() };
        ctx.nc.publish(ctx.subjects.cancel(id), JSON.stringify(signal));
        await cancels.put(id, JSON.stringify({ status: 'failed', message: `stopped ${i}` }));
      }
      await waitFor('the live orders', () => (watch.get('run39')?.status === 'failed' ? true : undefined), 5_000);
      expect(watch.size).toBe(10);
      expect(watch.get('run30')).toEqual({ status: 'failed', message: 'stopped 30' });
      expect(watch.get(ids[29])).toBeUndefined();
    } finally {
      watch.stop();
    }
  });
});
