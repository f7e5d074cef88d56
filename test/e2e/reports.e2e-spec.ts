import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunReport } from '@conveyor/contracts';
import { Api } from '../support/api';
import { NatsServer } from '../support/nats-server';
import { waitFor } from '../support/processes';
import { TestSystem } from '../support/system';

jest.setTimeout(120_000);

const ROOT = join(__dirname, '..', '..');
const SECRET_KEY = randomBytes(32).toString('base64');
const HOOK_SECRET = `hook-${randomBytes(12).toString('hex')}`;
const FORGE_TOKEN = `tok-${randomBytes(12).toString('hex')}`;
const NOTIFY_SECRET = `notify-${randomBytes(12).toString('hex')}`;
const fixture = (name: string): any => JSON.parse(readFileSync(join(ROOT, 'libs', 'triggers', 'fixtures', `${name}.json`), 'utf8'));
const hmac = (body: string, secret: string) => createHmac('sha256', secret).update(body).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Received {
  at: number;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A forge API and a chat hook, as far as a test can tell: an HTTP server on 127.0.0.1 that
 * records every request and answers what `answer` says (201 by default). It can be stopped and
 * started again on the same port, to be "down" for a while.
 */
class Receiver {
  readonly got: Received[] = [];
  answer: (r: Received) => { status: number; headers?: Record<string, string>; body?: string } = () => ({ status: 201, body: '{}' });
  private server?: Server;
  port = 0;

  async up(): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const r: Received = { at: Date.now(), method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
        this.got.push(r);
        const a = this.answer(r);
        res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
        res.end(a.body ?? '');
      });
    });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  async down(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  to(path: string): Received[] {
    return this.got.filter((r) => r.url.startsWith(path));
  }
}

/**
 * Commit statuses and notifications end to end: a webhook starts a run on a real gateway and a
 * test driver; the gateway posts the pending and final statuses to a forge API the test runs, and
 * the pipeline's notifications to a hook it runs, signed; with the receiver down for the whole
 * run and up later, each arrives exactly once and in order; a refusal or a receiver that never
 * answers well is given up on and shown in the run.
 */
describe('reports: commit statuses and notifications', () => {
  let sys: TestSystem;
  let forge: Receiver;
  let chat: Receiver;
  let open: Api;
  const reportsOf = async (runId: string): Promise<RunReport[]> => (await sys.api.run(runId)).reports ?? [];
  const settled = (runId: string, n: number) =>
    waitFor(`${n} settled reports of run ${runId}`, async () => {
      const r = await reportsOf(runId);
      return r.length === n && r.every((x) => x.outcome !== 'retrying') ? r : undefined;
    }, 60_000, 100);
  const byId = (reports: RunReport[], suffix: string) => reports.find((r) => r.id?.endsWith(suffix));

  const hook = async (trigger: string, headers: Record<string, string>, payload: unknown) => {
    const body = JSON.stringify(payload);
    const res = await open.request<any>('POST', `/hooks/${trigger}`, body, { 'content-type': 'application/json', ...headers });
    expect(res.status).toBe(202);
    return res.body.runid as string;
  };
  const githubPush = (commit: string) => {
    const p = fixture('github-push');
    p.after = commit;
    p.head_commit.id = commit;
    const body = JSON.stringify(p);
    return hook('gh', { 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${hmac(body, HOOK_SECRET)}` }, p);
  };

  beforeAll(async () => {
    forge = await new Receiver().up();
    chat = await new Receiver().up();
    sys = await TestSystem.on(await NatsServer.start(), {}, {
      CONVEYOR_SECRET_KEY: SECRET_KEY,
      CONVEYOR_PUBLIC_URL: 'https://ci.example.test',
      CONVEYOR_REPORTS_RETRY_BASE: '200ms',
      CONVEYOR_REPORTS_RETRY_MAX: '1s',
      CONVEYOR_REPORTS_MAX_ATTEMPTS: '8',
      CONVEYOR_REPORTS_TIMEOUT: '2s',
    });
    open = new Api(sys.api.baseUrl);
    await sys.startDriver(['report-work']);
    for (const [name, value] of [['hook-secret', HOOK_SECRET], ['forge-token', FORGE_TOKEN], ['notify-secret', NOTIFY_SECRET]]) await sys.api.ok('PUT', `/secrets/${name}`, { value });
    await sys.api.ok('POST', '/pipelines', {
      name: 'checked',
      resource: 'thing',
      steps: [{ id: 'work', name: 'Work', driver: 'report-work', config: { sleepMs: 300 } }],
      notify: [
        { url: `${chat.url}/signed?channel=ci`, on: ['succeeded', 'failed'], secret: 'notify-secret' },
        { url: `${chat.url}/failures`, on: ['failed'] },
      ],
    });
    await sys.api.ok('POST', '/pipelines', { name: 'failing', resource: 'thing', steps: [{ id: 'work', name: 'Work', driver: 'report-work', config: { sleepMs: 300, failTimes: 99 } }], notify: [{ url: `${chat.url}/failures`, on: ['failed'] }] });
    await sys.api.ok('POST', '/triggers', { name: 'gh', source: 'github', secret: 'hook-secret', resource: 'thing', pipeline: 'checked', status: { api: `${forge.url}/api/v3/`, token: 'forge-token' } });
    await sys.api.ok('POST', '/triggers', { name: 'gl', source: 'gitlab', secret: 'hook-secret', resource: 'thing', pipeline: 'failing', status: { api: `${forge.url}/api/v4`, token: 'forge-token', context: 'ci/build' } });
  });
  afterAll(async () => {
    await sys?.stop();
    await forge?.down();
    await chat?.down();
  });

  it("posts a webhook run's pending and final GitHub statuses and its signed notification, once each", async () => {
    const commit = randomBytes(20).toString('hex');
    const runId = await githubPush(commit);
    const run = await sys.waitForRun(runId);
    expect(run.status).toBe('succeeded');
    expect(run.trigger).toMatchObject({ trigger: 'gh', commit });
    const all = await settled(runId, 3);

    const statuses = forge.to(`/api/v3/repos/octo-org/hello-world/statuses/${commit}`);
    expect(statuses.map((s) => JSON.parse(s.body).state)).toEqual(['pending', 'success']);
    for (const s of statuses) {
      expect(s.method).toBe('POST');
      expect(s.headers.authorization).toBe(`Bearer ${FORGE_TOKEN}`);
      expect(JSON.parse(s.body)).toMatchObject({ context: 'conveyor/checked', target_url: `https://ci.example.test/#/runs/${runId}` });
    }
    expect(JSON.parse(statuses[1].body).description).toMatch(/^Succeeded in \d/);

    const [note] = chat.to('/signed');
    expect(chat.to('/signed')).toHaveLength(1);
    expect(chat.to('/failures')).toHaveLength(0);
    expect(note.headers['x-conveyor-signature-256']).toBe(`sha256=${hmac(note.body, NOTIFY_SECRET)}`);
    expect(note.headers).toMatchObject({ 'x-conveyor-event': 'run.succeeded', 'x-conveyor-delivery': `${runId}.notify.0` });
    expect(JSON.parse(note.body)).toMatchObject({ event: 'run.succeeded', run: { id: runId, status: 'succeeded', pipeline: 'checked', steps: [{ id: 'work', status: 'succeeded' }] }, trigger: { name: 'gh', commit } });

    // The run shows each report once: the two statuses and the notification.
    expect(all.map((r) => [r.kind, r.event, r.outcome, r.attempts]).sort()).toEqual([
      ['notification', 'succeeded', 'delivered', 1],
      ['status', 'pending', 'delivered', 1],
      ['status', 'success', 'delivered', 1],
    ]);
    expect(byId(all, '.notify.0')!.target).toBe(`${chat.url}/signed`);
  });

  it('with the forge and the hook down for the whole run and up later, each status and notification arrives exactly once, in order', async () => {
    forge.got.length = 0;
    chat.got.length = 0;
    await forge.down();
    await chat.down();
    const p = fixture('gitlab-push');
    const commit = randomBytes(20).toString('hex');
    p.checkout_sha = commit;
    p.after = commit;
    const runId = await hook('gl', { 'x-gitlab-event': 'Push Hook', 'x-gitlab-event-uuid': randomUUID(), 'x-gitlab-token': HOOK_SECRET }, p);
    expect((await sys.waitForRun(runId)).status).toBe('failed');
    // Tried, refused by the closed port, and kept for later.
    await waitFor('the start status to be retried', async () => {
      const s = byId(await reportsOf(runId), '.status.start');
      return s && s.outcome === 'retrying' && s.attempts >= 2 ? s : undefined;
    }, 30_000, 100);
    const waiting = byId(await reportsOf(runId), '.status.start')!;
    expect(waiting.error).toMatch(/ECONNREFUSED/);
    expect(waiting.next).toEqual(expect.any(String));
    // The end's status waits for the start's: it is not tried while the start's is not through.
    expect(byId(await reportsOf(runId), '.status.end')).toBeUndefined();

    await forge.up();
    await chat.up();
    const reports = await settled(runId, 3);
    expect(reports.every((r) => r.outcome === 'delivered')).toBe(true);
    expect(byId(reports, '.status.start')!.attempts).toBeGreaterThanOrEqual(2);
    await sleep(2500); // nothing more comes: no second copy of any report
    const statuses = forge.to('/api/v4/projects/15/statuses/');
    expect(statuses.map((s) => [s.url, JSON.parse(s.body).state])).toEqual([
      [`/api/v4/projects/15/statuses/${commit}`, 'running'],
      [`/api/v4/projects/15/statuses/${commit}`, 'failed'],
    ]);
    expect(statuses[0].headers['private-token']).toBe(FORGE_TOKEN);
    expect(JSON.parse(statuses[1].body)).toMatchObject({ name: 'ci/build', ref: 'main', description: expect.stringMatching(/^Failed/) });
    expect(chat.to('/failures')).toHaveLength(1);
    expect(chat.to('/failures')[0].headers['x-conveyor-signature-256']).toBeUndefined();
  });

  it('honours Retry-After, gives up at once on a refusal and after the attempts limit on errors, and shows why in the run', async () => {
    forge.got.length = 0;
    chat.got.length = 0;
    let signedCalls = 0;
    chat.answer = (r) => {
      if (r.url.startsWith('/failures')) return { status: 401, body: '{"message":"bad token"}' };
      return ++signedCalls === 1 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 204 };
    };
    forge.answer = (r) => (JSON.parse(r.body).state === 'pending' ? { status: 201 } : { status: 503, body: 'maintenance' });
    await sys.api.ok('PUT', '/pipelines/checked', {
      resource: 'thing',
      steps: [{ id: 'work', name: 'Work', driver: 'report-work', config: { sleepMs: 100, failTimes: 99 } }],
      notify: [
        { url: `${chat.url}/signed`, on: ['failed'], secret: 'notify-secret' },
        { url: `${chat.url}/failures`, on: ['failed'] },
      ],
    });
    const runId = await githubPush(randomBytes(20).toString('hex'));
    expect((await sys.waitForRun(runId)).status).toBe('failed');
    const reports = await settled(runId, 4);
    expect(byId(reports, '.notify.1')).toMatchObject({ outcome: 'failed', attempts: 1, error: 'HTTP 401: the receiver refused it ({"message":"bad token"})' });
    expect(byId(reports, '.notify.0')).toMatchObject({ outcome: 'delivered', attempts: 2 });
    const signed = chat.to('/signed');
    expect(signed).toHaveLength(2);
    expect(signed[1].at - signed[0].at).toBeGreaterThanOrEqual(1900);
    expect(byId(reports, '.status.end')).toMatchObject({ outcome: 'failed', attempts: 8, error: 'HTTP 503; gave up after 8 attempts (maintenance)' });
    expect(forge.got.filter((r) => JSON.parse(r.body).state === 'failure')).toHaveLength(8);
    chat.answer = () => ({ status: 201 });
    forge.answer = () => ({ status: 201 });
  });

  it("refuses a pipeline's notify that is not an http(s) URL, holds credentials, names an unknown outcome or a secret that is not stored", async () => {
    const pipeline = (notify: unknown) => sys.api.request<any>('POST', '/pipelines', { name: `n-${randomBytes(3).toString('hex')}`, resource: 'thing', steps: [{ id: 'a', name: 'a', driver: 'report-work' }], notify });
    expect(await pipeline([{ url: 'ftp://x.example/h', on: ['failed'] }])).toMatchObject({ status: 400, body: { message: 'notify.0.url must be an http or https URL' } });
    expect(await pipeline([{ url: 'https://u:p@x.example/h', on: ['failed'] }])).toMatchObject({ status: 400, body: { message: expect.stringMatching(/notify.0.url must not hold credentials/) } });
    expect(await pipeline([{ url: 'https://x.example/h', on: ['exploded'] }])).toMatchObject({ status: 400, body: { message: 'notify.0.on: each outcome must be one of succeeded, failed, cancelled' } });
    expect(await pipeline([{ url: 'https://x.example/h', on: [] }])).toMatchObject({ status: 400 });
    expect(await pipeline([{ url: 'https://x.example/h', on: ['failed'], secret: 'no-such-secret' }])).toMatchObject({ status: 400, body: { message: expect.stringMatching(/secret "no-such-secret" that does not exist/) } });
    const ok = await pipeline([{ url: 'https://x.example/h', on: ['failed', 'failed'] }]);
    expect(ok.status).toBe(201);
    expect((await sys.api.ok<any>('GET', `/pipelines/${ok.body.name}`)).notify).toEqual([{ url: 'https://x.example/h', on: ['failed'] }]);
  });
});

