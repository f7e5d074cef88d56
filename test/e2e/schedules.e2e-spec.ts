import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { Resource, Run } from '@conveyor/contracts';
import { Api } from '../support/api';
import { startGateway, type RunningGateway } from '../support/gateway';
import { NatsServer } from '../support/nats-server';
import { waitFor } from '../support/processes';
import { TestSystem } from '../support/system';

const ADMIN = `admin-${randomBytes(16).toString('hex')}`;
const WRITER = `write-${randomBytes(16).toString('hex')}`;
const READER = `read-${randomBytes(16).toString('hex')}`;
const TOKENS = `${ADMIN}:admin,${WRITER}:write,${READER}:read`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface TickMeta {
  schedule: string;
  tick: string;
  tickAt: string;
  catchUp?: boolean;
}

/**
 * Schedules on two gateways sharing one nats-server, with a test driver serving the pipeline:
 * one run per tick however many gateways time it, one catch-up run after downtime, the API's
 * answers to bad input and weaker roles.
 */
describe('schedules (two gateways, one nats-server, a test driver)', () => {
  let sys: TestSystem;
  let gw2: RunningGateway | undefined;
  let pipeline: string;
  const as = (token?: string) => new Api(sys.api.baseUrl, token);

  beforeAll(async () => {
    sys = await TestSystem.on(await NatsServer.start(), { CONVEYOR_AGENT_ID: 'agent-1' }, { CONVEYOR_API_TOKENS: TOKENS, CONVEYOR_AGENT_ID: 'gateway-1' });
    gw2 = await startGateway(sys.nats.url, { CONVEYOR_API_TOKENS: TOKENS, CONVEYOR_AGENT_ID: 'gateway-2' });
    await sys.startDriver(['tick-work']);
    pipeline = await sys.pipeline([{ driver: 'tick-work' }]);
  }, 60_000);

  afterAll(async () => {
    await gw2?.close().catch(() => undefined);
    await sys?.stop();
  });

  /** Every version of a resource of type `thing` with its tick metadata (a tick makes one version). */
  async function versions(name: string): Promise<Array<Resource & { metadata: Partial<TickMeta> }>> {
    const latest = await sys.api.request<Resource>('GET', `/resources/thing/${name}`);
    if (latest.status === 404) return [];
    const out = [];
    for (let v = 1; v <= latest.body.version; v++) out.push(await sys.api.ok('GET', `/resources/thing/${name}/${v}`));
    return out;
  }

  /** The ticks stored on a schedule's subject of the ticks stream, in order. */
  async function storedTicks(schedule: string): Promise<Array<{ at: string; by: string }>> {
    const nc = await connect({ servers: sys.nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      const out = [];
      let seq = 1;
      for (let i = 0; i < 200; i++) {
        const m = await jsm.direct.getMessage('CONVEYOR_TICKS', { next_by_subj: `conveyor.ticks.${schedule}`, seq }).catch(() => null);
        if (!m) break;
        out.push(m.json<{ at: string; by: string }>());
        seq = m.seq + 1;
      }
      return out;
    } finally {
      await nc.close();
    }
  }

  it('creates, reads, changes and deletes schedules; refuses bad input with a 400 that says why, and weaker roles', async () => {
    const body = { name: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Berlin', resource: 'thing', pipeline, spec: { ref: 'main' } };
    const bad = async (b: object, message: RegExp) => {
      const r = await sys.api.request('POST', '/schedules', b);
      expect({ status: r.status, message: r.body.message }).toEqual({ status: 400, message: expect.stringMatching(message) });
    };
    await bad({ ...body, cron: '61 * * * *' }, /^cron "61 \* \* \* \*" is not valid/);
    await bad({ ...body, cron: '* * *' }, /3 field\(s\); use 5 .* or 6/);
    await bad({ ...body, timezone: 'Mars/Olympus' }, /timezone "Mars\/Olympus" is not an IANA time zone/);
    await bad({ ...body, pipeline: 'nope' }, /pipeline "nope" does not exist/);
    await bad({ ...body, resource: 'nope' }, /resource definition "nope" does not exist/);
    await bad({ ...body, name: 'Bad.Name' }, /name must be/);
    await bad({ ...body, spec: undefined }, /spec must be an object/);

    // Roles: reads for read, every change for admin only.
    expect((await as(READER).request('POST', '/schedules', body)).status).toBe(403);
    expect((await as(WRITER).request('POST', '/schedules', body)).status).toBe(403);
    expect((await as().request('GET', '/schedules')).status).toBe(401);

    const made = await sys.api.request('POST', '/schedules', body);
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ name: 'nightly', resourceName: 'nightly', last: null, next: expect.stringMatching(/T0[12]:00:00\.000Z$/) });
    expect((await sys.api.request('POST', '/schedules', body)).status).toBe(409);

    const read = await as(READER).request('GET', '/schedules/nightly');
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ cron: '0 3 * * *', timezone: 'Europe/Berlin', pipeline });
    expect((await as(READER).request('GET', '/schedules')).body.map((s: { name: string }) => s.name)).toEqual(['nightly']);
    // The other gateway reads the same.
    expect((await new Api(gw2!.url, READER).request('GET', '/schedules/nightly')).body.next).toBe(read.body.next);

    for (const [method, path] of [['GET', '/schedules/nope'], ['PUT', '/schedules/nope'], ['DELETE', '/schedules/nope']] as const) {
      expect((await sys.api.request(method, path, method === 'PUT' ? { ...body, name: undefined } : undefined)).status).toBe(404);
    }
    expect((await sys.api.request('PUT', '/schedules/nightly', { ...body, name: 'other' })).status).toBe(400);
    expect((await sys.api.request('PUT', '/schedules/nightly', { ...body, cron: '0 3 * *' })).status).toBe(400);
    expect((await as(READER).request('PUT', '/schedules/nightly', body)).status).toBe(403);
    const changed = await sys.api.request('PUT', '/schedules/nightly', { ...body, cron: '30 4 * * 1', timezone: undefined });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ cron: '30 4 * * 1', next: expect.stringMatching(/T04:30:00\.000Z$/) });
    expect(changed.body.timezone).toBeUndefined();

    expect((await as(READER).request('DELETE', '/schedules/nightly')).status).toBe(403);
    expect((await sys.api.request('DELETE', '/schedules/nightly')).status).toBe(204);
    expect((await sys.api.request('GET', '/schedules/nightly')).status).toBe(404);
  });

  it('starts one run per tick, every second, with two gateways timing it; deleting the schedule stops its ticks', async () => {
    const made = await sys.api.ok<{ createdAt: string }>('POST', '/schedules', { name: 'every-second', cron: '* * * * * *', resource: 'thing', pipeline, spec: {} });
    const from = Date.parse(made.createdAt);
    // The due times in the 5 s after it was made: exactly 5 whole seconds.
    const lastDueMs = Math.floor((from + 5000) / 1000) * 1000;
    await sleep(Math.max(0, lastDueMs - Date.now()));
    await waitFor('the tick of the last second to start its run', async () => {
      const s = await sys.api.ok<{ last: { at: string } | null }>('GET', '/schedules/every-second');
      return s.last && Date.parse(s.last.at) >= lastDueMs ? true : undefined;
    }, 10_000, 100);
    expect((await sys.api.request('DELETE', '/schedules/every-second')).status).toBe(204);

    await sleep(500); // a tick stored just before the delete is skipped by the runner, or ran
    const all = await versions('every-second');
    const inWindow = all.filter((v) => Date.parse(v.metadata.tickAt!) > from && Date.parse(v.metadata.tickAt!) <= lastDueMs);
    expect(inWindow.length).toBeGreaterThanOrEqual(4);
    expect(inWindow.length).toBeLessThanOrEqual(6);
    // Never two versions (or runs) for one tick, and every tick is a due time of the schedule.
    const ticks = all.map((v) => v.metadata.tick);
    expect(new Set(ticks).size).toBe(all.length);
    for (const v of all) expect(v.metadata.tick).toBe(`every-second:${new Date(v.metadata.tickAt!).toISOString()}`);
    expect(all.every((v) => v.metadata.tickAt!.endsWith('.000Z'))).toBe(true);
    // Both gateways timed every second, and the stream holds one tick per due time.
    const stored = await storedTicks('every-second');
    expect(new Set(stored.map((t) => t.at)).size).toBe(stored.length);
    expect(stored.length).toBeGreaterThanOrEqual(all.length);
    expect(stored.length).toBeLessThanOrEqual(all.length + 1); // one stored as it was deleted
    const runIds = all.map((v) => v.runid!);
    expect(new Set(runIds).size).toBe(all.length);
    // One run per version, no other runs of the resource; each one really ran.
    const runs = (await sys.api.ok<Run[]>('GET', '/runs?resource=every-second&limit=500'));
    expect(runs.map((r) => r.id).sort()).toEqual([...runIds].sort());
    for (const id of runIds) expect((await sys.waitForRun(id, ['succeeded'], 20_000)).resource.name).toBe('every-second');

    // The two gateways' counters of started ticks add up to the runs.
    const started = async (api: Api) => {
      const text = (await api.request<string>('GET', '/metrics')).body;
      return Number(/conveyor_schedule_ticks_total\{schedule="every-second",outcome="started"\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    expect((await started(sys.api)) + (await started(new Api(gw2!.url, ADMIN)))).toBe(all.length);

    // Deleted: no more ticks, on either gateway.
    const after = all.length;
    await sleep(2_500);
    expect((await versions('every-second')).length).toBe(after);
  }, 60_000);

  it('starts one run for a tick delivered twice (as after a gateway died before its ack)', async () => {
    await sys.api.ok('POST', '/schedules', { name: 'twice', cron: '0 3 1 1 *', resource: 'thing', pipeline, spec: { n: 1 } });
    const at = new Date(Math.ceil((Date.now() + 10) / 1000) * 1000).toISOString();
    const tick = { v: 1, schedule: 'twice', at, tick: `twice:${at}`, catchUp: false, by: 'test' };
    const nc = await connect({ servers: sys.nats.url });
    try {
      // Stored twice (distinct message ids, no fence): the shared consumer delivers the same tick two times.
      const js = jetstream(nc);
      await js.publish('conveyor.ticks.twice', JSON.stringify(tick), { msgID: 'redelivery-1' });
      await js.publish('conveyor.ticks.twice', JSON.stringify(tick), { msgID: 'redelivery-2' });
    } finally {
      await nc.close();
    }
    const started = await waitFor('the tick to start its run', async () => {
      const s = await sys.api.ok<{ last: { tick: string; runid?: string } | null }>('GET', '/schedules/twice');
      return s.last?.tick === tick.tick && s.last.runid ? s.last.runid : undefined;
    }, 10_000, 100);
    await sleep(3_000); // past the other delivery's second look
    const all = await versions('twice');
    expect(all.map((v) => ({ tick: v.metadata.tick, runid: v.runid }))).toEqual([{ tick: tick.tick, runid: started }]);
    expect((await sys.api.ok<Run[]>('GET', '/runs?resource=twice')).map((r) => r.id)).toEqual([started]);
    await sys.api.ok('DELETE', '/schedules/twice');
  });

  it('takes over a tick whose taker stopped after recording its run id, and starts that run', async () => {
    await sys.api.ok('POST', '/schedules', { name: 'orphan', cron: '0 3 1 1 *', resource: 'thing', pipeline, spec: {} });
    const at = new Date(Math.ceil((Date.now() + 10) / 1000) * 1000);
    const tick = { v: 1, schedule: 'orphan', at: at.toISOString(), tick: `orphan:${at.toISOString()}`, catchUp: false, by: 'gone' };
    const recorded = '0'.repeat(20) + 'orphan';
    const nc = await connect({ servers: sys.nats.url });
    try {
      // What a gateway that died mid-start leaves: the tick's run id recorded, no version, no run.
      await (await new Kvm(nc).open('conveyor-tick-runs')).create(`orphan.${at.getTime()}`, recorded);
      await jetstream(nc).publish('conveyor.ticks.orphan', JSON.stringify(tick), { msgID: tick.tick });
    } finally {
      await nc.close();
    }
    const started = await waitFor('the tick to be taken over', async () => (await sys.api.ok<{ last: { runid?: string } | null }>('GET', '/schedules/orphan')).last?.runid, 15_000, 100);
    expect(started).toBe(recorded);
    expect((await versions('orphan')).map((v) => v.runid)).toEqual([recorded]);
    expect((await sys.waitForRun(recorded, ['succeeded'], 20_000)).resource.name).toBe('orphan');
    await sys.api.ok('DELETE', '/schedules/orphan');
  }, 40_000);

  it('records a tick whose resource write is refused (a definition changed since), and starts no run', async () => {
    await sys.api.ok('POST', '/resource-definitions', { name: 'strict', version: '1', schema: { type: 'object' } });
    const strictPipeline = await sys.api.ok<{ name: string }>('POST', '/pipelines', { name: 'strict-pipe', resource: 'strict', steps: [{ id: 's1', name: 'one', driver: 'tick-work' }] });
    await sys.api.ok('POST', '/schedules', { name: 'refused', cron: '* * * * * *', resource: 'strict', pipeline: strictPipeline.name, spec: {} });
    await sys.api.ok('PUT', '/resource-definitions/strict', { name: 'strict', version: '2', schema: { type: 'object', properties: { repository: { type: 'string' } }, required: ['repository'] } });
    const last = await waitFor('a refused tick to be recorded', async () => {
      const s = await sys.api.ok<{ last: { error?: string; runid?: string; tick: string } | null }>('GET', '/schedules/refused');
      return s.last?.error ? s.last : undefined;
    }, 10_000, 100);
    expect(last.error).toMatch(/spec does not match resource definition "strict"/);
    expect(last.runid).toBeUndefined();
    await sys.api.ok('DELETE', '/schedules/refused');
    expect((await sys.api.request('GET', '/resources/strict/refused')).status).toBe(404);
  });

  it("starts the runs of ticks again after the gateways' tick consumer was deleted by hand", async () => {
    const nc = await connect({ servers: sys.nats.url });
    try {
      await (await jetstreamManager(nc)).consumers.delete('CONVEYOR_TICKS', 'gateway-ticks');
    } finally {
      await nc.close();
    }
    await sys.api.ok('POST', '/schedules', { name: 'after-loss', cron: '* * * * * *', resource: 'thing', pipeline, spec: {} });
    const runid = await waitFor('a tick of a schedule made after the loss to start its run', async () => {
      const s = await sys.api.ok<{ last: { runid?: string } | null }>('GET', '/schedules/after-loss');
      return s.last?.runid;
    }, 20_000, 200);
    await sys.api.ok('DELETE', '/schedules/after-loss');
    expect((await sys.waitForRun(runid, ['succeeded'], 20_000)).resource.name).toBe('after-loss');
  }, 40_000);

  it('after every gateway was down across several ticks, runs one catch-up tick, not one per missed tick', async () => {
    await sys.api.ok('POST', '/schedules', { name: 'catch-up', cron: '* * * * * *', resource: 'thing', pipeline, spec: {} });
    await waitFor('a first tick', async () => ((await sys.api.ok<{ last: unknown }>('GET', '/schedules/catch-up')).last ? true : undefined), 10_000, 100);

    await gw2!.close();
    gw2 = undefined;
    let stoppedAt = 0;
    await sys.restartGateway(async () => {
      stoppedAt = Date.now();
      await sleep(3_500);
    });
    const startedAt = Date.now();

    const caughtUp = await waitFor('the catch-up tick to start its run', async () => {
      const found = (await versions('catch-up')).find((v) => v.metadata.catchUp);
      return found;
    }, 10_000, 100);
    const at = Date.parse(caughtUp.metadata.tickAt!);
    // For the most recent due time when the gateway came back, not one of the first missed ones.
    expect(at).toBeGreaterThan(stoppedAt + 2_000);
    expect(at).toBeLessThanOrEqual(startedAt);
    await sleep(1_500);
    await sys.api.ok('DELETE', '/schedules/catch-up');
    const all = await versions('catch-up');
    const missed = all.filter((v) => Date.parse(v.metadata.tickAt!) > stoppedAt && Date.parse(v.metadata.tickAt!) <= startedAt);
    expect(missed.map((v) => v.metadata.tick)).toEqual([caughtUp.metadata.tick]);
    expect(all.filter((v) => v.metadata.catchUp).length).toBe(1);
    expect(new Set(all.map((v) => v.runid)).size).toBe(all.length);
    expect((await sys.waitForRun(caughtUp.runid!, ['succeeded'], 20_000)).resource.version).toBe(caughtUp.version);
  }, 60_000);
});
