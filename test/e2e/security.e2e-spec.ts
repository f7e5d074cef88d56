import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Api } from '../support/api';
import { startGateway, type RunningGateway } from '../support/gateway';
import { NatsServer } from '../support/nats-server';

const ADMIN = `admin-${randomBytes(16).toString('hex')}`;
const WRITER = `write-${randomBytes(16).toString('hex')}`;
const READER = `read-${randomBytes(16).toString('hex')}`;
const TOKENS = { admin: ADMIN, write: WRITER, read: READER } as const;
const SECRET_KEY = randomBytes(32).toString('base64');
const SECRET_VALUE = `sv-${randomBytes(12).toString('hex')}`;

/** Every stream (KV buckets included) and its last sequence: if nothing was stored, nothing changed. */
async function storedSequences(nc: NatsConnection): Promise<Record<string, number>> {
  const jsm = await jetstreamManager(nc);
  const out: Record<string, number> = {};
  for await (const s of jsm.streams.list()) out[s.config.name] = s.state.last_seq;
  return out;
}

/** Waits (bounded) until nothing is being stored, then returns the sequences. */
async function settled(nc: NatsConnection): Promise<Record<string, number>> {
  let last = await storedSequences(nc);
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const now = await storedSequences(nc);
    if (JSON.stringify(now) === JSON.stringify(last)) return now;
    last = now;
  }
  throw new Error('the store did not settle within 10 s');
}

describe('security: API tokens, roles, secrets, limits (real gateway, real nats-server)', () => {
  let nats: NatsServer;
  let gw: RunningGateway;
  let nc: NatsConnection;
  let runId: string;
  const as = (role?: keyof typeof TOKENS | 'wrong') => new Api(gw.url, role === 'wrong' ? `wrong-${randomBytes(16).toString('hex')}` : role ? TOKENS[role] : undefined);

  beforeAll(async () => {
    nats = await NatsServer.start();
    gw = await startGateway(nats.url, {
      CONVEYOR_API_TOKENS: `${ADMIN}:admin,${WRITER}:write,${READER}:read`,
      CONVEYOR_SECRET_KEY: SECRET_KEY,
      CONVEYOR_SSE_MAX_PER_RUN: '2',
    });
    nc = await connect({ servers: nats.url });
    const admin = as('admin');
    await admin.ok('POST', '/resource-definitions', { name: 'app', version: '1', schema: { type: 'object' } });
    await admin.ok('POST', '/pipelines', { name: 'ci', resource: 'app', steps: [{ id: 'b', name: 'build', driver: 'nobody-serves-this' }] });
    await admin.ok('PUT', '/secrets/deploy-token', { value: SECRET_VALUE });
    runId = (await admin.ok('POST', '/resources', { name: 'web', resource: 'app', pipeline: 'ci', spec: { env: [{ name: 'TOKEN', secret: 'deploy-token' }] } })).runid;
  });

  afterAll(async () => {
    await nc?.close();
    await gw?.close();
    await nats?.dispose();
  });

  /** Every endpoint, a body that would change something if it got through, and the least role it needs. */
  const endpoints = (): Array<{ method: string; path: string; body?: unknown; need: 'read' | 'write' | 'admin' }> => [
    { method: 'GET', path: '/resource-definitions', need: 'read' },
    { method: 'GET', path: '/resource-definitions/app', need: 'read' },
    { method: 'GET', path: '/pipelines', need: 'read' },
    { method: 'GET', path: '/pipelines/ci', need: 'read' },
    { method: 'GET', path: '/resources', need: 'read' },
    { method: 'GET', path: '/resources/app/web', need: 'read' },
    { method: 'GET', path: '/resources/app/web/1', need: 'read' },
    { method: 'GET', path: '/runs', need: 'read' },
    { method: 'GET', path: `/runs/${runId}`, need: 'read' },
    { method: 'GET', path: `/logs?runid=${runId}`, need: 'read' },
    { method: 'GET', path: '/drivers', need: 'read' },
    { method: 'GET', path: '/docs-json', need: 'read' },
    { method: 'POST', path: '/resources', body: { name: 'intruder', resource: 'app', pipeline: 'ci', spec: {} }, need: 'write' },
    { method: 'PUT', path: '/resources/app/web', body: { spec: { changed: true } }, need: 'write' },
    { method: 'POST', path: `/runs/${runId}/cancel`, need: 'write' },
    { method: 'POST', path: '/resource-definitions', body: { name: 'evil', schema: { type: 'object' } }, need: 'admin' },
    { method: 'POST', path: '/resource-definitions/apply', body: { name: 'app', schema: { type: 'string' } }, need: 'admin' },
    { method: 'PUT', path: '/resource-definitions/app', body: { name: 'app', schema: { type: 'string' } }, need: 'admin' },
    { method: 'DELETE', path: '/resource-definitions/app', need: 'admin' },
    { method: 'POST', path: '/pipelines', body: { name: 'evil', resource: 'app', steps: [{ id: 'x', name: 'x', driver: 'x' }] }, need: 'admin' },
    { method: 'PUT', path: '/pipelines/ci', body: { name: 'ci', resource: 'app', steps: [{ id: 'x', name: 'x', driver: 'x' }] }, need: 'admin' },
    { method: 'DELETE', path: '/pipelines/ci', need: 'admin' },
    { method: 'DELETE', path: '/resources/app/web', need: 'admin' },
    { method: 'PUT', path: '/secrets/deploy-token', body: { value: 'replaced' }, need: 'admin' },
    { method: 'GET', path: '/secrets', need: 'admin' },
    { method: 'DELETE', path: '/secrets/deploy-token', need: 'admin' },
    { method: 'GET', path: '/schedules', need: 'read' },
    { method: 'GET', path: '/schedules/nightly', need: 'read' },
    { method: 'POST', path: '/schedules', body: { name: 'evil', cron: '* * * * * *', resource: 'app', pipeline: 'ci', spec: {} }, need: 'admin' },
    { method: 'PUT', path: '/schedules/nightly', body: { cron: '* * * * * *', resource: 'app', pipeline: 'ci', spec: {} }, need: 'admin' },
    { method: 'DELETE', path: '/schedules/nightly', need: 'admin' },
    { method: 'GET', path: `/runs/${runId}/artifacts`, need: 'read' },
    { method: 'GET', path: `/runs/${runId}/artifacts/dist/app`, need: 'read' },
    { method: 'GET', path: '/caches', need: 'read' },
    { method: 'DELETE', path: '/caches/npm-key', need: 'admin' },
    { method: 'GET', path: '/triggers', need: 'read' },
    { method: 'GET', path: '/triggers/gh', need: 'read' },
    { method: 'POST', path: '/triggers', body: { name: 'evil', source: 'generic', secret: 'deploy-token', resource: 'app', pipeline: 'ci' }, need: 'admin' },
    { method: 'PUT', path: '/triggers/gh', body: { source: 'generic', secret: 'deploy-token', resource: 'app', pipeline: 'ci' }, need: 'admin' },
    { method: 'DELETE', path: '/triggers/gh', need: 'admin' },
  ];

  it('answers 401 with WWW-Authenticate: Bearer to every endpoint without a token or with a wrong one, and stores nothing', async () => {
    const before = await settled(nc);
    const paths = [...endpoints(), { method: 'GET', path: '/docs' }, { method: 'GET', path: '/metrics' }, { method: 'GET', path: `/logs/pipeline/${runId}` }, { method: 'GET', path: '/no-such-path' }];
    for (const who of [undefined, 'wrong'] as const) {
      for (const e of paths) {
        const res = await as(who).request(e.method, e.path, (e as { body?: unknown }).body);
        expect({ who, ...e, status: res.status }).toEqual({ who, ...e, status: 401 });
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="conveyor"/);
        expect(res.body).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
      }
    }
    // Malformed Authorization headers are refused the same way.
    for (const header of ['Basic YWRtaW46YWRtaW4=', `Bearer`, `Bearer ${ADMIN} extra`, `${ADMIN}`, `Bearer ${ADMIN.slice(0, -1)}`]) {
      const res = await new Api(gw.url).request('DELETE', '/pipelines/ci', undefined, { authorization: header });
      expect({ header, status: res.status }).toEqual({ header, status: 401 });
    }
    expect(await settled(nc)).toEqual(before);
  });

  it('answers 403 to a role that may not, for every endpoint, and stores nothing', async () => {
    const before = await settled(nc);
    const weaker = { read: [], write: ['read'], admin: ['read', 'write'] } as const;
    let checked = 0;
    for (const e of endpoints()) {
      for (const role of weaker[e.need]) {
        const res = await as(role).request(e.method, e.path, e.body);
        expect({ role, ...e, status: res.status }).toEqual({ role, ...e, status: 403 });
        expect(res.body.message).toContain(`needs the "${e.need}" role`);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
    // Case and trailing-slash variants of a route are the same route, and the same rule.
    for (const path of ['/SECRETS', '/secrets/', '/Secrets/deploy-token']) {
      const res = await as('write').request(path.endsWith('token') ? 'DELETE' : 'GET', path);
      expect({ path, status: res.status }).toEqual({ path, status: 403 });
    }
    expect(await settled(nc)).toEqual(before);
  });

  it('lets each role do what it may', async () => {
    for (const role of ['read', 'write', 'admin'] as const) {
      expect((await as(role).request('GET', '/runs')).status).toBe(200);
      expect((await as(role).request('GET', '/docs-json')).status).toBe(200);
    }
    expect((await as('write').request('POST', '/resources', { name: 'by-writer', resource: 'app', spec: {} })).status).toBe(201);
    expect((await as('write').request('PUT', '/resources/app/by-writer', { spec: { v: 2 } })).status).toBe(200);
    expect((await as('admin').request('DELETE', '/resources/app/by-writer')).status).toBe(204);
    // /health is open to everyone.
    expect((await as().request('GET', '/health')).status).toBe(200);
    // So is a webhook delivery (POST /hooks/<trigger>): the trigger's signature is its authentication.
    expect(await as().request('POST', '/hooks/no-such-trigger', {})).toMatchObject({ status: 404 });
    // Only that: other methods and spellings of the path need a token.
    expect((await as().request('GET', '/hooks/no-such-trigger')).status).toBe(401);
    expect((await as().request('POST', '/hooks/a/b', {})).status).toBe(401);
    expect((await as().request('POST', '/HOOKS/no-such-trigger', {})).status).toBe(401);
  });

  it('accepts the token on SSE streams as a header or as ?access_token=, and limits streams per run (429)', async () => {
    const url = `${gw.url}/logs/pipeline/${runId}`;
    const opened: Array<Promise<void>> = [];
    const aborts: AbortController[] = [];
    const open = async (suffix: string, headers: Record<string, string>) => {
      const abort = new AbortController();
      aborts.push(abort);
      const res = await fetch(url + suffix, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
      return res;
    };
    try {
      const a = await open('', { authorization: `Bearer ${READER}` });
      const b = await open(`?access_token=${READER}`, {});
      expect([a.status, b.status]).toEqual([200, 200]);
      const closeLater = () => opened.push(a.body!.cancel().catch(() => undefined), b.body!.cancel().catch(() => undefined));
      // Two streams are open (the run never ends: nobody serves its driver): a third is one too many.
      const c = await open(`?access_token=${READER}`, {});
      expect(c.status).toBe(429);
      expect(await c.json()).toMatchObject({ statusCode: 429, message: expect.stringContaining('CONVEYOR_SSE_MAX_PER_RUN') });
      // ?access_token= is for SSE only, and a wrong one is refused.
      expect((await fetch(`${gw.url}/runs?access_token=${READER}`)).status).toBe(401);
      expect((await open(`?access_token=nope-${READER}`, {})).status).toBe(401);
      closeLater();
    } finally {
      aborts.forEach((x) => x.abort());
      await Promise.all(opened);
    }
    // Closed streams free their places (bounded wait).
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const res = await open(`?access_token=${READER}`, {});
      status = res.status;
      await res.body?.cancel().catch(() => undefined);
    }
    aborts.forEach((x) => x.abort());
    expect(status).toBe(200);
  }, 30_000);

  describe('secrets', () => {
    it('stores a secret encrypted, lists names only, and never returns the value', async () => {
      const admin = as('admin');
      expect((await admin.request('PUT', '/secrets/other', { value: 'first' })).status).toBe(201);
      const replaced = await admin.request('PUT', '/secrets/other', { value: `second-${SECRET_VALUE}` });
      expect(replaced.status).toBe(200);
      const list = await admin.request('GET', '/secrets');
      expect(list.body.map((s: { name: string }) => s.name)).toEqual(['deploy-token', 'other']);
      // Nothing any endpoint answers contains the value, nor does the stored record.
      const everything = [replaced, list, await admin.request('GET', '/resources'), await admin.request('GET', '/resources/app/web'), await admin.request('GET', `/runs/${runId}`), await admin.request('GET', '/runs'), await admin.request('GET', '/docs-json')];
      for (const r of everything) expect(JSON.stringify(r.body)).not.toContain(SECRET_VALUE);
      const kv = await jetstreamManager(nc);
      const stored = await kv.streams.getMessage('KV_conveyor-secrets', { last_by_subj: '$KV.conveyor-secrets.deploy-token' });
      expect(Buffer.from(stored!.data).toString('latin1')).not.toContain(SECRET_VALUE);
      expect(stored!.json()).toMatchObject({ alg: 'aes-256-gcm' });
      expect((await admin.request('DELETE', '/secrets/other')).status).toBe(204);
      expect((await admin.request('DELETE', '/secrets/other')).status).toBe(404);
    });

    it('refuses bad names and values, and resources referring to unknown secrets (400), storing nothing', async () => {
      const admin = as('admin');
      const before = await settled(nc);
      for (const [path, body] of [
        ['/secrets/has.dot', { value: 'x' }],
        ['/secrets/-dash', { value: 'x' }],
        ['/secrets/' + 'a'.repeat(64), { value: 'x' }],
        ['/secrets/ok-name', { value: '' }],
        ['/secrets/ok-name', { value: 42 }],
        ['/secrets/ok-name', {}],
        ['/secrets/ok-name', { value: 'nul\u0000byte' }],
        ['/secrets/ok-name', { value: 'x'.repeat(64 * 1024 + 1) }],
      ] as const) {
        const res = await admin.request('PUT', path, body);
        expect({ path, status: res.status }).toEqual({ path, status: 400 });
      }
      const unknown = await admin.request('POST', '/resources', { name: 'typo', resource: 'app', pipeline: 'ci', spec: { env: [{ name: 'T', secret: 'no-such-secret' }] } });
      expect(unknown.status).toBe(400);
      expect(unknown.body.message).toContain('"no-such-secret"');
      const badRef = await admin.request('PUT', '/resources/app/web', { spec: { env: [{ name: 'T', secret: '../../x' }] } });
      expect(badRef.status).toBe(400);
      expect(await settled(nc)).toEqual(before);
    });

    it('answers 503 with a clear message on a gateway without CONVEYOR_SECRET_KEY', async () => {
      const plain = await startGateway(nats.url, { CONVEYOR_API_TOKENS: `${ADMIN}:admin` });
      try {
        const api = new Api(plain.url, ADMIN);
        for (const [method, path, body] of [['PUT', '/secrets/x1', { value: 'v' }], ['GET', '/secrets'], ['DELETE', '/secrets/deploy-token']] as const) {
          const res = await api.request(method, path, body);
          expect({ path, status: res.status }).toEqual({ path, status: 503 });
          expect(res.body.message).toContain('CONVEYOR_SECRET_KEY');
        }
        const ref = await api.request('POST', '/resources', { name: 'needs-key', resource: 'app', spec: { env: [{ name: 'T', secret: 'deploy-token' }] } });
        expect(ref.status).toBe(503);
      } finally {
        await plain.close();
      }
    });
  });
});
