import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { Run } from '@conveyor/contracts';
import { Api, readSse } from '../support/api';
import { startGateway, type RunningGateway } from '../support/gateway';
import { NatsServer } from '../support/nats-server';
import { waitFor } from '../support/processes';
import { TestSystem } from '../support/system';

jest.setTimeout(120_000);

type SseEvent = { id?: string; event: string; data: string };

const ADMIN = `admin-${randomBytes(16).toString('hex')}`;
const WRITER = `write-${randomBytes(16).toString('hex')}`;
const READER = `read-${randomBytes(16).toString('hex')}`;
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/**
 * What the web dashboard needs of the gateway: the run feed (SSE), runs paging, whoami, dead
 * letters and the dashboard's own files. A real nats-server, the gateway, test driver processes;
 * a second gateway with API tokens on the same server for what depends on them.
 */
describe('gateway API for the web dashboard', () => {
  let sys: TestSystem;
  let nc: NatsConnection;
  let runsKv: KV;
  /** A gateway with tokens and a dashboard folder written by the test. */
  let secured: RunningGateway;
  let webRoot: string;
  let webDir: string;
  const as = (token?: string) => (path: string, init: RequestInit = {}) =>
    fetch(secured.url + path, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers as Record<string, string>) } });

  beforeAll(async () => {
    sys = await TestSystem.start();
    await sys.startDriver(['feeder', 'dlq-target', 'dlq-other']);
    nc = await connect({ servers: sys.nats.url });
    runsKv = await new Kvm(nc).open('conveyor-runs');
    // A folder beside the dashboard's, with a file no request may reach.
    webRoot = mkdtempSync(join(tmpdir(), 'conveyor-web-'));
    writeFileSync(join(webRoot, 'outside.txt'), 'not for the web');
    webDir = join(webRoot, 'web');
    mkdirSync(join(webDir, 'assets'), { recursive: true });
    writeFileSync(join(webDir, 'index.html'), '<!doctype html><title>Conveyor</title><script type="module" src="/assets/x.js"></script>');
    writeFileSync(join(webDir, 'assets', 'x.js'), 'console.log("dashboard")');
    writeFileSync(join(webDir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    secured = await startGateway(sys.nats.url, {
      CONVEYOR_API_TOKENS: `${ADMIN}:admin,${WRITER}:write,${READER}:read`,
      CONVEYOR_SSE_MAX_RUN_FEEDS: '2',
      CONVEYOR_WEB_DIR: webDir,
    });
  });
  afterAll(async () => {
    await secured?.close();
    await nc?.close();
    await sys?.stop();
    if (webRoot) rmSync(webRoot, { recursive: true, force: true });
  });

  describe('GET /runs/events', () => {
    it('streams a run\'s records as it runs (id = revision), the last one the stored run with its ETag', async () => {
      const first = await fetch(`${sys.api.baseUrl}/runs/events`, { headers: { accept: 'text/event-stream' } });
      expect(first.status).toBe(200);
      expect(first.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const reader = first.body!.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toMatch(/^retry: 1000\n\n/);
      await reader.cancel();

      const events: SseEvent[] = [];
      let runId = '';
      const started = (async () => {
        // Triggered once the stream is open: the feed sends only changes from now on.
        await new Promise((r) => setTimeout(r, 200));
        runId = await sys.run([{ driver: 'feeder', config: { sleepMs: 300 } }, { driver: 'feeder' }]);
      })();
      await readSse(`${sys.api.baseUrl}/runs/events`, (e) => {
        events.push(e);
        const run = JSON.parse(e.data) as Run;
        return !(run.id === runId && run.status === 'succeeded');
      }, {}, 30_000);
      await started;
      const mine = events.filter((e) => e.event === 'run' && (JSON.parse(e.data) as Run).id === runId);
      expect(mine.length).toBeGreaterThanOrEqual(2);
      const ids = events.map((e) => Number(e.id));
      expect(ids.every((id, i) => Number.isInteger(id) && (i === 0 || id > ids[i - 1]))).toBe(true);
      const statuses = mine.map((e) => (JSON.parse(e.data) as Run).status);
      expect(statuses).toContain('running');
      expect(statuses[statuses.length - 1]).toBe('succeeded');
      const stored = await sys.api.request<Run>('GET', `/runs/${runId}`);
      expect(JSON.parse(mine[mine.length - 1].data)).toEqual(stored.body);
      expect(stored.headers.get('etag')).toContain(mine[mine.length - 1].id!);
    });

    it('resumes after Last-Event-ID without a gap or a duplicate, for one run with ?run=', async () => {
      const runId = await sys.run([{ driver: 'feeder' }]);
      await sys.waitForRun(runId);
      const revision = Number((await sys.api.request('GET', `/runs/${runId}`)).headers.get('etag')!.replace(/\D/g, ''));
      const url = `${sys.api.baseUrl}/runs/events?run=${runId}`;
      // From the revision before the last: the last comes at once; from the last, nothing until the run changes.
      const caughtUp: SseEvent[] = [];
      await readSse(url, (e) => {
        caughtUp.push(e);
        return false;
      }, { 'Last-Event-ID': String(revision - 1) }, 10_000);
      expect(caughtUp.map((e) => [e.id, e.event])).toEqual([[String(revision), 'run']]);
      expect(JSON.parse(caughtUp[0].data)).toMatchObject({ id: runId, status: 'succeeded' });

      const later: SseEvent[] = [];
      let rerun = '';
      const changed = (async () => {
        await new Promise((r) => setTimeout(r, 300));
        rerun = (await sys.api.ok<{ runid: string }>('POST', `/runs/${runId}/rerun`, {})).runid;
      })();
      await readSse(url, (e) => {
        later.push(e);
        return !(JSON.parse(e.data) as Run).reruns?.length;
      }, { 'Last-Event-ID': String(revision) }, 20_000);
      await changed;
      // Only this run's key: nothing of the re-run's own records, and nothing from before.
      expect(later.every((e) => (JSON.parse(e.data) as Run).id === runId && Number(e.id) > revision)).toBe(true);
      expect(JSON.parse(later[later.length - 1].data).reruns).toEqual([rerun]);
      await sys.waitForRun(rerun);
    });

    it('sends "deleted" with the id when a run record is deleted', async () => {
      const fake = `00000000000000${randomBytes(6).toString('hex')}`;
      const events: SseEvent[] = [];
      const writer = (async () => {
        await new Promise((r) => setTimeout(r, 200));
        await runsKv.put(fake, JSON.stringify({ id: fake, status: 'queued' }));
        await runsKv.delete(fake);
      })();
      await readSse(`${sys.api.baseUrl}/runs/events?run=${fake}`, (e) => {
        events.push(e);
        return e.event !== 'deleted';
      }, {}, 10_000);
      await writer;
      expect(events.map((e) => e.event)).toEqual(['run', 'deleted']);
      expect(JSON.parse(events[1].data)).toEqual({ id: fake });
      expect(Number(events[1].id)).toBeGreaterThan(Number(events[0].id));
      await runsKv.purge(fake);
    });

    it('refuses a bad run id (400), caps feeds per gateway (429), takes ?access_token=, and ends its streams when the gateway stops', async () => {
      expect((await fetch(`${sys.api.baseUrl}/runs/events?run=not-a-run`)).status).toBe(400);
      expect((await as(READER)('/runs/events?run=x')).status).toBe(400);
      const aborts: AbortController[] = [];
      const open = async (path: string, headers: Record<string, string> = {}) => {
        const abort = new AbortController();
        aborts.push(abort);
        return fetch(secured.url + path, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
      };
      try {
        expect((await open('/runs/events')).status).toBe(401);
        const a = await open(`/runs/events?access_token=${READER}`);
        const b = await open('/runs/events', { authorization: `Bearer ${READER}` });
        expect([a.status, b.status]).toEqual([200, 200]);
        const c = await open(`/runs/events?access_token=${READER}`);
        expect(c.status).toBe(429);
        expect(await c.json()).toMatchObject({ statusCode: 429, message: expect.stringContaining('CONVEYOR_SSE_MAX_RUN_FEEDS') });
        // ?access_token= is for SSE paths only.
        expect((await fetch(`${secured.url}/runs?access_token=${READER}`)).status).toBe(401);
        expect((await open(`/runs/events?access_token=nope-${READER}`)).status).toBe(401);
        await a.body!.cancel().catch(() => undefined);
        const again = await waitFor('a freed place', async () => {
          const res = await open(`/runs/events?access_token=${READER}`);
          if (res.status === 200) return res;
          await res.body?.cancel().catch(() => undefined);
          return undefined;
        }, 5_000, 100);
        expect(again.status).toBe(200);
      } finally {
        aborts.forEach((x) => x.abort());
      }

      const other = await startGateway(sys.nats.url);
      const res = await fetch(`${other.url}/runs/events`);
      expect(res.status).toBe(200);
      const ended = (async () => {
        for await (const _ of res.body as unknown as AsyncIterable<Uint8Array>) {
          // read to the end
        }
        return true;
      })();
      const t = Date.now();
      await other.close();
      expect(await ended).toBe(true);
      expect(Date.now() - t).toBeLessThan(5_000);
    });
  });

  describe('GET /runs paging', () => {
    it('pages with ?before= and a Link header (rel="next") keeping the filters, until a short page', async () => {
      const pipeline = await sys.pipeline([{ driver: 'feeder' }]);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await sys.trigger(pipeline));
      const all = await waitFor('the five run records', async () => {
        const list = (await sys.api.ok<Run[]>('GET', `/runs?pipeline=${pipeline}&limit=10`)).map((r) => r.id);
        return list.length === 5 ? list : undefined;
      });
      expect([...all].sort()).toEqual([...ids].sort());
      expect(all).toEqual([...all].sort().reverse());

      const paged: string[] = [];
      const links: string[] = [];
      let path: string | undefined = `/runs?pipeline=${pipeline}&limit=2`;
      while (path) {
        const res: { status: number; body: Run[]; headers: Headers } = await sys.api.request<Run[]>('GET', path);
        expect(res.status).toBe(200);
        paged.push(...res.body.map((r) => r.id));
        const link = res.headers.get('link');
        if (link) links.push(link);
        path = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1] : undefined;
      }
      expect(paged).toEqual(all);
      expect(links).toEqual([
        `</runs?before=${all[1]}&pipeline=${pipeline}&limit=2>; rel="next"`,
        `</runs?before=${all[3]}&pipeline=${pipeline}&limit=2>; rel="next"`,
      ]);
      // Without filters too: the one just older than a run.
      expect((await sys.api.ok<Run[]>('GET', `/runs?limit=1&before=${all[0]}`)).map((r) => r.id)).toEqual([all[1]]);
      const bad = await sys.api.request('GET', '/runs?before=nope');
      expect(bad.status).toBe(400);
      expect(bad.body.message).toContain('before');
      await Promise.all(ids.map((id) => sys.waitForRun(id)));
    });
  });

  describe('GET /whoami', () => {
    it('answers the token\'s role, admin without tokens, 401 without a token when tokens are configured', async () => {
      expect(await sys.api.ok('GET', '/whoami')).toEqual({ role: 'admin', authenticated: false });
      for (const [token, role] of [[READER, 'read'], [WRITER, 'write'], [ADMIN, 'admin']] as const) {
        const res = await as(token)('/whoami');
        expect(res.status).toBe(200);
        expect(await res.json()).toEqual({ role, authenticated: true });
      }
      expect((await as()('/whoami')).status).toBe(401);
      expect((await as(`wrong-${READER}`)('/whoami')).status).toBe(401);
      // The OpenAPI document names the role each new route needs.
      const doc = (await (await as(READER)('/docs-json')).json()) as { paths: Record<string, { get: Record<string, unknown> }> };
      expect(doc.paths['/whoami'].get['x-conveyor-role']).toBe('read');
      expect(doc.paths['/runs/events'].get['x-conveyor-role']).toBe('read');
      expect(doc.paths['/dead-letters'].get['x-conveyor-role']).toBe('read');
    });
  });

  describe('GET /dead-letters', () => {
    it('lists the newest dead letters, newest first, with a preview of the payload; by driver; bounded by limit', async () => {
      const js = jetstream(nc);
      const long = Buffer.concat([Buffer.from('{"v":1,'), Buffer.from('é'.repeat(300)), Buffer.from([0xff, 0xfe]), Buffer.from('x'.repeat(400))]);
      const poison: Array<[string, Uint8Array]> = [
        ['dlq-target', Buffer.from('not json at all')],
        ['dlq-other', Buffer.from('{"v":1')],
        ['dlq-target', long],
      ];
      // Poison on purpose: the check sees it break the protocol.
      sys.nats.wire?.expectViolations(/^conveyor\.steps\.01b{23}\d\.s1\.dlq-(target|other)\.any$/);
      for (const [i, [driver, payload]] of poison.entries()) await js.publish(`conveyor.steps.01bbbbbbbbbbbbbbbbbbbbbbb${i}.s1.${driver}.any`, payload);
      const all = await waitFor('three dead letters', async () => {
        const list = await sys.api.ok<Array<Record<string, any>>>('GET', '/dead-letters');
        return list.length >= 3 ? list : undefined;
      }, 20_000, 100);
      expect(all).toHaveLength(3);
      expect(all.map((d) => d.seq)).toEqual([...all.map((d) => d.seq)].sort((a, b) => b - a));
      // Each driver's agent reads its own letters in order; the two drivers' may interleave.
      expect(all.map((d) => d.driver).sort()).toEqual(['dlq-other', 'dlq-target', 'dlq-target']);
      const target = await sys.api.ok<Array<Record<string, any>>>('GET', '/dead-letters?driver=dlq-target');
      expect(target).toEqual(all.filter((d) => d.driver === 'dlq-target'));
      const [newest, older] = target;
      expect(newest.seq).toBeGreaterThan(older.seq);
      expect(newest).toMatchObject({ driver: 'dlq-target', subject: 'conveyor.steps.01bbbbbbbbbbbbbbbbbbbbbbb2.s1.dlq-target.any', agent: expect.stringMatching(/^agent-/), payloadBytes: long.length });
      expect(newest.reason).toMatch(/UTF-8 JSON/);
      expect(newest.preview).toBe(long.subarray(0, 512).toString('utf8'));
      expect(newest.preview).toContain('\ufffd');
      expect(newest.payload).toBeUndefined();
      expect(typeof newest.streamSeq).toBe('number');
      expect(newest.headers).toEqual(expect.any(Object));
      expect(new Date(newest.at).toISOString()).toBe(newest.at);
      expect(older).toMatchObject({ driver: 'dlq-target', payloadBytes: 15, preview: 'not json at all' });

      expect((await sys.api.ok<unknown[]>('GET', '/dead-letters?limit=1'))).toEqual([all[0]]);
      expect((await sys.api.ok<unknown[]>('GET', '/dead-letters?driver=dlq-target&limit=1'))).toEqual([newest]);
      expect(await sys.api.ok('GET', '/dead-letters?driver=nobody-wrote')).toEqual([]);
      for (const q of ['driver=Bad.Name', 'driver=a*', 'limit=0', 'limit=201', 'limit=x']) {
        expect({ q, status: (await sys.api.request('GET', `/dead-letters?${q}`)).status }).toEqual({ q, status: 400 });
      }
      // Read with a read token.
      expect((await as(READER)('/dead-letters?limit=1')).status).toBe(200);
      expect((await as()('/dead-letters')).status).toBe(401);
    });

    it('turns on direct gets of a dead-letter stream made by an older Conveyor, and reads it', async () => {
      const nats = await NatsServer.start();
      const c = await connect({ servers: nats.url });
      try {
        const jsm = await jetstreamManager(c);
        await jsm.streams.add({ name: 'CONVEYOR_DLQ', subjects: ['conveyor.dlq.>'] });
        const letter = { driver: 'old', subject: 'conveyor.steps.x.s1.old.any', reason: 'unreadable', agent: 'agent-0', payload: Buffer.from('hi').toString('base64'), headers: {}, at: new Date().toISOString() };
        await jetstream(c).publish('conveyor.dlq.old', JSON.stringify(letter));
        const gw = await startGateway(nats.url);
        try {
          expect((await jsm.streams.info('CONVEYOR_DLQ')).config.allow_direct).toBe(true);
          expect(await new Api(gw.url).ok('GET', '/dead-letters?driver=old')).toEqual([
            { seq: 1, at: expect.any(String), driver: 'old', subject: letter.subject, reason: 'unreadable', agent: 'agent-0', payloadBytes: 2, preview: 'hi', headers: {} },
          ]);
        } finally {
          await gw.close();
        }
      } finally {
        await c.close();
        await nats.dispose();
      }
    });
  });

  describe('the web dashboard', () => {
    it('serves index.html without a token, with no-cache and the CSP; API routes still need a token', async () => {
      for (const path of ['/', '/index.html']) {
        const res = await as()(path);
        expect({ path, status: res.status }).toEqual({ path, status: 200 });
        expect(res.headers.get('content-type')).toMatch(/^text\/html/);
        expect(res.headers.get('cache-control')).toBe('no-cache');
        expect(res.headers.get('content-security-policy')).toBe(CSP);
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
        expect(await res.text()).toContain('<title>Conveyor</title>');
      }
      const head = await as()('/', { method: 'HEAD' });
      expect(head.status).toBe(200);
      // Only GET and HEAD: anything else goes to the API (and its token check).
      expect((await as()('/', { method: 'POST' })).status).toBe(401);

      for (const path of ['/runs', '/pipelines', '/drivers', '/whoami', '/docs-json', '/metrics', '/no-such-path']) {
        const res = await as()(path);
        expect({ path, status: res.status }).toEqual({ path, status: 401 });
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      }
      const runs = await as(READER)('/runs');
      expect(runs.status).toBe(200);
      expect(runs.headers.get('content-type')).toMatch(/^application\/json/);
      expect(runs.headers.get('content-security-policy')).toBeNull();
      expect(Array.isArray(await runs.json())).toBe(true);
    });

    it('serves assets for good, other top-level files, and nothing outside the folder', async () => {
      const js = await as()('/assets/x.js');
      expect(js.status).toBe(200);
      expect(js.headers.get('content-type')).toMatch(/javascript/);
      expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(js.headers.get('content-security-policy')).toBeNull();
      expect(await js.text()).toBe('console.log("dashboard")');
      const icon = await as()('/favicon.svg');
      expect(icon.status).toBe(200);
      expect(icon.headers.get('content-type')).toMatch(/^image\/svg\+xml/);

      const missing = await as()('/assets/nope.js');
      expect(missing.status).toBe(404);
      expect(await missing.json()).toMatchObject({ statusCode: 404, error: 'Not Found' });
      for (const path of ['/assets/..%2f..%2foutside.txt', '/assets/%2e%2e%2f%2e%2e%2foutside.txt', '/..%2foutside.txt', '/web/index.html']) {
        const res = await as()(path);
        expect({ path, ok: res.status === 200 }).toEqual({ path, ok: false });
        expect(await res.text()).not.toContain('not for the web');
      }
    });

    it('answers 404 JSON at / when the dashboard is not built', async () => {
      const empty = mkdtempSync(join(tmpdir(), 'conveyor-web-empty-'));
      const gw = await startGateway(sys.nats.url, { CONVEYOR_API_TOKENS: `${READER}:read`, CONVEYOR_WEB_DIR: empty });
      try {
        const res = await fetch(`${gw.url}/`);
        expect(res.status).toBe(404);
        expect(await res.json()).toEqual({ statusCode: 404, error: 'Not Found', message: 'the web dashboard is not built: run npm run build' });
        expect((await fetch(`${gw.url}/runs`)).status).toBe(401);
        expect(await new Api(gw.url).request('GET', '/runs', undefined, { authorization: `Bearer ${READER}` })).toMatchObject({ status: 200 });
      } finally {
        await gw.close();
        rmSync(empty, { recursive: true, force: true });
      }
    });
  });
});
