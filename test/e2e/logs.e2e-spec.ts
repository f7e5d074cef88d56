import { getEventListeners } from 'node:events';
import { loadConfig } from '@conveyor/config';
import { connectJetStream, type JetStreamContext } from '@conveyor/jetstream';
import { LogFanout, LogReader, type LogEntry } from '@conveyor/logs';
import { TestSystem } from '../support/system';
import { readSse } from '../support/api';
import { waitFor as poll } from '../support/processes';

type SseEvent = { id?: string; event: string; data: string };

jest.setTimeout(120_000);

describe('logs', () => {
  let sys: TestSystem;
  let ctx: JetStreamContext;
  /** Consumers on the logs stream right now (each log read and SSE stream holds one while it lasts). */
  const logConsumers = async () => (await ctx.jsm.streams.info(ctx.subjects.logsStream)).state.consumer_count;
  const backTo = (n: number, what: string) => poll(what, async () => ((await logConsumers()) === n ? true : undefined), 5_000, 50);

  beforeAll(async () => {
    sys = await TestSystem.start();
    await sys.startDriver(['printer', 'quiet']);
    ctx = await connectJetStream(loadConfig({ CONVEYOR_NATS_URL: sys.nats.url }, { name: 'logs-test' }));
  });
  afterAll(async () => {
    await ctx?.nc.close();
    await sys?.stop();
  });

  it('serves stored lines in order with GET /logs, per run and per driver', async () => {
    const id = await sys.run([{ driver: 'printer', config: { lines: 50 } }, { driver: 'quiet' }]);
    expect((await sys.waitForRun(id)).status).toBe('succeeded');
    const all = await sys.api.ok<Array<{ line: string; driver: string; stream: string; seq: number }>>('GET', `/logs?runid=${id}`);
    const printed = all.filter((l) => l.stream === 'stdout').map((l) => l.line);
    expect(printed).toEqual(Array.from({ length: 50 }, (_, i) => `line ${i + 1}`));
    const quiet = await sys.api.ok<Array<{ driver: string }>>('GET', `/logs?runid=${id}&driver=quiet`);
    expect(quiet.length).toBeGreaterThan(0);
    expect(quiet.every((l) => l.driver === 'quiet')).toBe(true);
    expect((await sys.api.request('GET', '/logs?runid=nope')).status).toBe(400);
    expect((await sys.api.request('GET', '/logs?runid=01aaaaaaaaaaaaaaaaaaaaaaaa')).status).toBe(404);
  });

  it('streams 10,000 lines over SSE in order, without gap or duplicate, across a reconnect with Last-Event-ID', async () => {
    const id = await sys.run([{ driver: 'quiet', config: { sleepMs: 300 } }, { driver: 'printer', config: { lines: 10_000 } }, { driver: 'quiet' }]);
    const url = `${sys.api.baseUrl}/logs/pipeline/${id}`;
    const seen: string[] = [];
    let lastId = '';
    // First connection: read part of the stream live, then drop it.
    await readSse(url, (e) => {
      if (e.event !== 'log') return e.event !== 'end';
      lastId = e.id!;
      const l = JSON.parse(e.data);
      if (l.stream === 'stdout') seen.push(l.line);
      return seen.length < 3_000;
    });
    expect(seen.length).toBe(3_000);
    // Second connection resumes after the last event it saw, and runs to the end event.
    let ended = false;
    await readSse(url, (e) => {
      if (e.event === 'end') {
        ended = true;
        return false;
      }
      if (e.event !== 'log') return true;
      const l = JSON.parse(e.data);
      if (l.stream === 'stdout') seen.push(l.line);
      return true;
    }, { 'Last-Event-ID': lastId });
    expect(ended).toBe(true);
    expect(seen).toHaveLength(10_000);
    expect(seen).toEqual(Array.from({ length: 10_000 }, (_, i) => `line ${i + 1}`));
  });

  it('splits a line longer than the limit into several, losing nothing, and keeps a last line without newline', async () => {
    const id = await sys.run([{ driver: 'printer', config: { longLine: 40_000 } }]);
    expect((await sys.waitForRun(id)).status).toBe('succeeded');
    const out = (await sys.api.ok<Array<{ stream: string; line: string }>>('GET', `/logs?runid=${id}`)).filter((l) => l.stream === 'stdout');
    expect(out.length).toBe(3);
    expect(out.every((l) => l.line.length <= 16 * 1024)).toBe(true);
    expect(out.map((l) => l.line).join('')).toBe('x'.repeat(40_000));
  });

  it('the per-driver stream carries only that driver and ends when the run ends', async () => {
    const id = await sys.run([{ driver: 'printer', config: { lines: 20 } }, { driver: 'quiet', config: { sleepMs: 500 } }]);
    const drivers = new Set<string>();
    let end: { status: string } | undefined;
    await readSse(`${sys.api.baseUrl}/logs/streams/printer/${id}`, (e) => {
      if (e.event === 'end') {
        end = JSON.parse(e.data);
        return false;
      }
      if (e.event === 'log') drivers.add(JSON.parse(e.data).driver);
      return true;
    });
    expect([...drivers]).toEqual(['printer']);
    expect(end?.status).toBe('succeeded');
    await poll('the run record', async () => ((await sys.api.run(id)).status === 'succeeded' ? true : undefined));
  });

  it('removes the consumer of every log read and SSE stream when it ends, however it ends', async () => {
    const id = await sys.run([{ driver: 'printer', config: { lines: 5 } }, { driver: 'quiet', config: { sleepMs: 20_000 } }]);
    await poll('the printer lines', async () => ((await sys.api.ok<unknown[]>('GET', `/logs?runid=${id}&driver=printer`)).length >= 5 ? true : undefined), 10_000);
    const before = await logConsumers();

    // Stored reads: GET /logs, of the run and of one driver.
    for (let i = 0; i < 5; i++) await sys.api.ok('GET', `/logs?runid=${id}${i % 2 ? '&driver=printer' : ''}`);
    await backTo(before, 'the consumers of 5 GET /logs to be gone');
    // ... of a driver that logged nothing (no stored line: the reader returns early).
    expect(await sys.api.ok('GET', `/logs?runid=${id}&driver=nobody`)).toEqual([]);
    await backTo(before, 'the consumer of an empty GET /logs to be gone');

    // SSE clients of a live run that go away mid-stream.
    const clients = Array.from({ length: 6 }, (_, i) => {
      const abort = new AbortController();
      const path = i % 2 ? `/logs/streams/printer/${id}` : `/logs/pipeline/${id}`;
      const done = fetch(sys.api.baseUrl + path, { headers: { accept: 'text/event-stream' }, signal: abort.signal })
        .then(async (res) => {
          for await (const _ of res.body as unknown as AsyncIterable<Uint8Array>) void _;
        })
        .catch(() => undefined);
      return { abort, done };
    });
    // Followers of the same log share its reader (LogFanout): one consumer for the run's, one for the printer's.
    await poll('6 SSE streams of 2 logs to hold a consumer per log', async () => ((await logConsumers()) === before + 2 ? true : undefined), 10_000);
    for (const c of clients) c.abort.abort();
    await Promise.all(clients.map((c) => c.done));
    await backTo(before, 'the consumers of 6 disconnected SSE clients to be gone');

    // SSE streams the gateway ends itself (the run's end).
    await sys.api.ok('POST', `/runs/${id}/cancel`);
    await sys.waitForRun(id);
    const ends = await Promise.all(
      Array.from({ length: 3 }, async () => {
        let end = false;
        await readSse(`${sys.api.baseUrl}/logs/pipeline/${id}`, (e) => {
          if (e.event === 'end') end = true;
          return true;
        }, {}, 10_000);
        return end;
      }),
    );
    expect(ends).toEqual([true, true, true]);
    await backTo(before, 'the consumers of 3 SSE streams that reached the end to be gone');
  });

  it('answers a client that resumes after the end with the end again, and nothing twice', async () => {
    const id = await sys.run([{ driver: 'printer', config: { lines: 3 } }]);
    const url = `${sys.api.baseUrl}/logs/pipeline/${id}`;
    // Counted before the first stream: the client sees its end a moment before its consumer is deleted.
    const before = await logConsumers();
    const first: SseEvent[] = [];
    await readSse(url, (e) => {
      first.push(e);
      return e.event !== 'end';
    }, {}, 10_000);
    const end = first[first.length - 1];
    expect(end.event).toBe('end');
    expect(JSON.parse(end.data).status).toBe('succeeded');
    const logs = first.filter((e) => e.event === 'log');
    expect(logs.length).toBeGreaterThanOrEqual(3);

    /** What a reconnecting client (an EventSource) gets: read until the gateway closes the stream (bounded). */
    const resume = async (path: string, lastEventId: string) => {
      const got: SseEvent[] = [];
      await readSse(sys.api.baseUrl + path, (e) => void got.push(e), { 'Last-Event-ID': lastEventId }, 10_000);
      return got;
    };
    // After the end itself (an EventSource reconnects when the stream closes), and past it.
    expect(await resume(`/logs/pipeline/${id}`, end.id!)).toEqual([end]);
    expect(await resume(`/logs/pipeline/${id}`, String(Number(end.id) + 5))).toEqual([end]);
    expect(await resume(`/logs/streams/printer/${id}`, end.id!)).toEqual([end]);
    // After the last line: only the end.
    expect(await resume(`/logs/pipeline/${id}`, logs[logs.length - 1].id!)).toEqual([end]);
    // From the middle: the rest, then the end, each once.
    expect(await resume(`/logs/pipeline/${id}`, logs[0].id!)).toEqual([...logs.slice(1), end]);
    await backTo(before, 'no consumer left by the resumed streams');
  });

  it('lets followers of a run share one reader: each gets every line once, in order; one that falls behind the tail reads on by itself', async () => {
    const reader = new LogReader(ctx.js, ctx.jsm, ctx.subjects);
    const fanout = new LogFanout(reader, 100);
    const id = await sys.run([{ driver: 'printer', config: { lines: 1_000 } }]);
    await sys.waitForRun(id);
    const drain = async (it: AsyncGenerator<LogEntry>, pauseEvery = 0) => {
      const seqs: number[] = [];
      for await (const e of it) {
        seqs.push(e.seq);
        if (pauseEvery && seqs.length % pauseEvery === 0) await new Promise((r) => setTimeout(r, 5));
      }
      return seqs;
    };
    let whole: number[] = [];
    await poll('the end marker', async () => ((whole = await drain(reader.read(id, { follow: true }))).length > 1_000 ? true : undefined), 10_000);
    const before = await logConsumers();
    const followers = [0, 0, 0, 0, 50].map((pause) => drain(fanout.follow(id), pause));
    // Five followers, one reader.
    expect(fanout.size).toBe(1);
    const got = await Promise.all(followers);
    for (const seqs of got) expect(seqs).toEqual(whole);
    expect(fanout.readOnTheirOwn).toBe(1);
    // A follower resuming mid-log, and one after the end (told the end again).
    expect(await drain(fanout.follow(id, { afterSeq: whole[500] }))).toEqual(whole.slice(501));
    expect(await drain(fanout.follow(id, { afterSeq: whole[whole.length - 1] + 3 }))).toEqual([whole[whole.length - 1]]);
    expect(fanout.size).toBe(0);
    await backTo(before, 'no consumer left by the shared reader');
  });

  it('leaves no abort listener behind on a signal that outlives its reads', async () => {
    const reader = new LogReader(ctx.js, ctx.jsm, ctx.subjects);
    const before = await logConsumers();
    const shutdown = new AbortController(); // like an app's: lives for ever, never aborts
    const listeners = () => getEventListeners(shutdown.signal, 'abort').length;
    const drain = async (it: AsyncGenerator<LogEntry>) => {
      const out: LogEntry[] = [];
      for await (const e of it) out.push(e);
      return out;
    };
    const ended = await sys.run([{ driver: 'printer', config: { lines: 3 } }]);
    await sys.waitForRun(ended);
    await poll('the end marker', async () => ((await drain(reader.read(ended, { follow: false }))).some((e) => 'end' in e) ? true : undefined), 10_000);
    const all = await drain(reader.read(ended, { follow: true, signal: shutdown.signal }));
    const endSeq = all[all.length - 1].seq;
    for (let i = 0; i < 10; i++) {
      await drain(reader.read(ended, { follow: false, signal: shutdown.signal }));
      await drain(reader.read(ended, { follow: true, signal: shutdown.signal }));
      await drain(reader.read(ended, { follow: true, driver: 'nobody', signal: shutdown.signal }));
      await drain(reader.read(ended, { follow: true, afterSeq: endSeq, signal: shutdown.signal }));
      expect(listeners()).toBe(0);
    }

    // A live read holds one listener while it runs; leaving it (as an SSE client does) removes it.
    const live = await sys.run([{ driver: 'printer', config: { lines: 2 } }, { driver: 'quiet', config: { sleepMs: 20_000 } }]);
    for (let i = 0; i < 5; i++) {
      const it = reader.read(live, { follow: true, signal: shutdown.signal });
      expect((await it.next()).done).toBe(false);
      expect(listeners()).toBe(1);
      await it.return(undefined);
      expect(listeners()).toBe(0);
    }
    await sys.api.ok('POST', `/runs/${live}/cancel`);
    await backTo(before, 'no consumer left by the reader');
  });
});
