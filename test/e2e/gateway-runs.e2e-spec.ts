import request from 'supertest';
import { AckPolicy } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { Headers, MESSAGE_VERSION, PROJECTOR_CONSUMER, PROTOCOL_VERSION, decodeStepMessage, newRunId, type Run, type StepMessage } from '@conveyor/contracts';
import { loadConfig } from '@conveyor/config';
import { connectJetStream, openBuckets, type JetStreamContext } from '@conveyor/jetstream';
import { RunLog } from '@conveyor/run-log';
import { firstStepMessage, newRun, planTransition, type StepOutcome } from '@conveyor/runs';
import { NatsServer } from '../support/nats-server';
import { eventually, startGateway, tutorial, type RunningGateway } from '../support/gateway';

/** Runs: what POST /resources starts on NATS, the projector folding runs' logs, cancel. */
describe('gateway runs', () => {
  let nats: NatsServer;
  let gw: RunningGateway;
  let ctx: JetStreamContext;
  const http = () => request(gw.url);

  const getRun = async (id: string): Promise<Run> => (await http().get(`/runs/${id}`).expect(200)).body;
  const startRun = async (name: string): Promise<string> => {
    const res = await http().post('/resources').send({ ...tutorial.resource, name }).expect(201);
    return res.body.runid;
  };
  let log: RunLog;
  /** Records as an agent writes them, by hand, at the end of the run's log. */
  const expectAt = async (id: string) => (await log.head(id))!.seq;
  const claim = async (msg: StepMessage, agent: string, machine: string) => {
    expect((await log.step('claim', msg, 1, { agent, machine, delivery: 1 }, await expectAt(msg.runId))).stored).toBe(true);
  };
  const handOff = async (msg: StepMessage, outcome: StepOutcome): Promise<StepMessage | undefined> => {
    const t = planTransition(msg, outcome, { attempt: 1, agent: 'agent-a', machine: 'm1', at: new Date().toISOString() });
    expect((await log.writeTransition(t, await expectAt(msg.runId))).stored).toBe(true);
    return t.kind === 'work' ? t.msg : undefined;
  };
  const firstWork = async (id: string): Promise<StepMessage> => {
    const r = await log.first(id);
    if (r?.kind !== 'work') throw new Error(`run ${id} has no first work`);
    return r.msg;
  };
  const runWhere = (id: string, test: (r: Run) => boolean, what: string) =>
    eventually(async () => {
      const r = await getRun(id);
      return test(r) ? r : undefined;
    }, what);

  beforeAll(async () => {
    nats = await NatsServer.start();
    gw = await startGateway(nats.url);
    ctx = await connectJetStream(gw.config);
    log = new RunLog(ctx);
    await http().post('/resource-definitions').send(tutorial.definition).expect(201);
    await http().post('/pipelines').send(tutorial.pipeline).expect(201);
  });
  afterAll(async () => {
    await ctx?.nc.close();
    await gw?.close();
    await nats?.dispose();
  });

  it('runs the tutorial: POST /resources queues a run: its log\'s first record is its first step for container-start', async () => {
    const res = await http().post('/resources').send(tutorial.resource).expect(201);
    const runid: string = res.body.runid;
    expect(res.body).toEqual({ name: 'build-app', runid: expect.stringMatching(/^[0-9a-z]{26}$/), message: expect.stringContaining(runid), version: 1 });

    const run = await getRun(runid);
    expect(run).toMatchObject({
      id: runid,
      status: 'queued',
      cancelRequested: false,
      pipeline: { name: 'flutter-pipeline', resource: 'flutter-builder', steps: tutorial.pipeline.steps },
      resource: { type: 'flutter-builder', name: 'build-app', version: 1 },
    });
    expect(run.steps.map((s) => [s.id, s.driver, s.status, s.always])).toEqual([
      ['1', 'container-start', 'pending', false],
      ['2', 'git-cloner', 'pending', false],
      ['3', 'builder', 'pending', false],
      ['4', 'container-stop', 'pending', true],
    ]);
    expect((await http().get('/resources/flutter-builder/build-app/1').expect(200)).body.runid).toBe(runid);

    // The step message is really in the runs stream, on the run's work subject for the driver, with its headers.
    const stored = await ctx.jsm.streams.getMessage(ctx.subjects.runsStream, { last_by_subj: `conveyor.steps.${runid}.1.container-start.any` });
    expect(stored).not.toBeNull();
    const decoded = decodeStepMessage(stored!.data);
    if (!decoded.ok) throw new Error(decoded.reason);
    expect(decoded.value).toMatchObject({
      runId: runid,
      stepIndex: 0,
      mode: 'normal',
      outputs: {},
      resource: { type: 'flutter-builder', name: 'build-app', version: 1, spec: tutorial.resource.spec, metadata: {} },
      pipeline: { name: 'flutter-pipeline', steps: tutorial.pipeline.steps },
    });
    expect(stored!.header.get(Headers.RunId)).toBe(runid);
    expect(stored!.header.get(Headers.Pipeline)).toBe('flutter-pipeline');
    expect(stored!.header.get(Headers.Step)).toBe('1');
    expect(stored!.header.get(Headers.StepIndex)).toBe('0');
    expect(stored!.header.get(Headers.Driver)).toBe('container-start');
    expect(stored!.header.get(Headers.Mode)).toBe('normal');
    expect(stored!.header.get(Headers.Protocol)).toBe(PROTOCOL_VERSION);
    expect(stored!.header.get(Headers.Resource)).toBe('flutter-builder/build-app@1');
    expect(stored!.header.get(Headers.MsgId)).toBe(`${runid}.0.normal`);
    // It is the whole of the run's log: starting a run is one write, and starting it again
    // (a retried start) is recognised as that same write, never a second one.
    expect((await log.head(runid))?.seq).toBe(stored!.seq);
    expect(await log.start(decoded.value)).toEqual({ stored: true, seq: stored!.seq });
    expect((await log.head(runid))?.seq).toBe(stored!.seq);
    // Another first step for the same run is refused.
    expect((await log.start({ ...decoded.value, mode: 'cleanup', outcome: { status: 'failed', message: 'x' } })).stored).toBe(false);
  });

  it('starts a new run for every PUT of a resource that has a pipeline', async () => {
    const put = await http().put('/resources/flutter-builder/build-app').send({ spec: { repository: 'file:///srv/app.git', env: [{ name: 'A', value: '1' }] } }).expect(200);
    expect(put.body.version).toBe(2);
    const run = await getRun(put.body.runid);
    expect(run).toMatchObject({ status: 'queued', resource: { version: 2 } });
    const stored = await ctx.jsm.streams.getMessage(ctx.subjects.runsStream, { last_by_subj: ctx.subjects.runLog(put.body.runid) });
    expect(stored!.header.get(Headers.RunId)).toBe(put.body.runid);
  });

  it('folds the records of a run\'s log into GET /runs/:id', async () => {
    const id = await startRun('fold-me');
    const first = await firstWork(id);
    await claim(first, 'agent-a', 'm1');
    const running = await runWhere(id, (r) => r.steps[0].status === 'running', 'step 1 running');
    expect(running).toMatchObject({ status: 'running', startedAt: expect.any(String) });
    expect(running.steps[0]).toMatchObject({ attempts: 1, agent: 'agent-a', machine: 'm1', startedAt: expect.any(String) });

    const second = (await handOff(first, { status: 'succeeded', output: { success: true, data: { containerId: 'c1' } } }))!;
    await claim(second, 'agent-a', 'm1');
    const cleanup = (await handOff(second, { status: 'failed', output: { success: false, message: 'clone failed' } }))!;
    const after = await runWhere(id, (r) => r.steps[1].status === 'failed' && r.steps[0].status === 'succeeded', 'steps 1 and 2 folded');
    expect(after.steps[0]).toMatchObject({ status: 'succeeded', data: { containerId: 'c1' }, finishedAt: expect.any(String) });
    expect(after.steps[1]).toMatchObject({ status: 'failed', message: 'clone failed', attempts: 1 });
    expect(after.steps[2].status).toBe('skipped');
    expect(cleanup).toMatchObject({ stepIndex: 3, mode: 'cleanup' });

    await claim(cleanup, 'agent-a', 'm1');
    await handOff(cleanup, { status: 'succeeded', output: { success: true } });
    const failed = await runWhere(id, (r) => r.status === 'failed', 'run failed');
    expect(failed).toMatchObject({ message: 'step "Clone Repository" failed: clone failed', finishedAt: expect.any(String) });
    expect(failed.steps.map((s) => s.status)).toEqual(['succeeded', 'failed', 'skipped', 'succeeded']);

    const list = await http().get('/runs?status=failed').expect(200);
    expect(list.body.map((r: Run) => r.id)).toEqual([id]);
  });

  it('folds a run it started on from the record it wrote: no read of it, one run-index entry, one create', async () => {
    // Every request about run records, as the NATS server receives them (a plain subscriber gets a copy of each).
    const bucket = ctx.subjects.bucket('runs');
    const seen: string[] = [];
    const subs = [`$JS.API.DIRECT.GET.KV_${bucket}.>`, `$KV.${bucket}.>`, ctx.subjects.allRunIndex].map((s) =>
      ctx.nc.subscribe(s, { callback: (_e, m) => void seen.push(m.subject) }),
    );
    await ctx.nc.flush();
    const folded = () =>
      eventually(async () => {
        const c = await ctx.jsm.consumers.info(ctx.subjects.runsStream, PROJECTOR_CONSUMER);
        return c.num_pending === 0 && c.num_ack_pending === 0 ? true : undefined;
      }, 'the projector to fold every record');
    let id: string;
    try {
      id = await startRun('fold-from-own');
      await folded();
      const first = await firstWork(id);
      await claim(first, 'agent-a', 'm1');
      await handOff(first, { status: 'succeeded', output: { success: true, data: { containerId: 'c1' } } });
      await folded();
      await ctx.nc.flush();
    } finally {
      subs.forEach((s) => s.unsubscribe());
    }
    const of = (subject: string) => seen.filter((s) => s === subject).length;
    // Before, the first fold read the record, and often raced the starter: it found none, and
    // stored a second index entry and a second create, both refused.
    expect(of(`$JS.API.DIRECT.GET.KV_${bucket}.$KV.${bucket}.${id}`)).toBe(0);
    expect(of(ctx.subjects.runIndex(id))).toBe(1);
    // The create, then one write per fold that changed it: the claim and the hand-off are folded
    // together when they come within one gathering (GATHER_MS), else one after the other.
    expect([2, 3]).toContain(of(`$KV.${bucket}.${id}`));
    const run = await getRun(id);
    expect(run.steps[0]).toMatchObject({ status: 'succeeded', agent: 'agent-a', data: { containerId: 'c1' } });
    expect(run.steps[1]).toMatchObject({ status: 'pending', attempts: 0 });
  });

  it('starts runs from its own copy of definitions and pipelines: no read of either, and a change is used by the next start', async () => {
    const reads: string[] = [];
    const subs = [ctx.subjects.bucket('definitions'), ctx.subjects.bucket('pipelines')].map((b) =>
      ctx.nc.subscribe(`$JS.API.DIRECT.GET.KV_${b}.>`, { callback: (_e, m) => void reads.push(m.subject) }),
    );
    await ctx.nc.flush();
    const pipelineOf = async (id: string) => (await getRun(id)).pipeline.steps.map((s) => s.id);
    const steps = tutorial.pipeline.steps;
    try {
      // Read once at most (a gateway that started before they were written reads what its watch
      // has not brought yet), then held.
      await startRun('catalog-warm');
      reads.length = 0;
      for (let i = 0; i < 3; i++) await startRun(`catalog-${i}`);
      await ctx.nc.flush();
      expect(reads).toEqual([]);
      // A change through this gateway: the very next start uses it.
      await http().put(`/pipelines/${tutorial.pipeline.name}`).send({ ...tutorial.pipeline, steps: steps.slice(0, 2) }).expect(200);
      expect(await pipelineOf(await startRun('catalog-changed'))).toEqual(steps.slice(0, 2).map((s) => s.id));
      // A change written past this gateway (another copy, or `nats kv put`): once its watch brings it.
      const { pipelines } = await openBuckets(ctx);
      const stored = (await pipelines.get(tutorial.pipeline.name))!.json<Record<string, unknown>>();
      await pipelines.put(tutorial.pipeline.name, JSON.stringify({ ...stored, steps: steps.slice(0, 3) }));
      await eventually(async () => ((await pipelineOf(await startRun(`catalog-elsewhere-${Date.now()}`))).length === 3 ? true : undefined), 'a start with the pipeline written elsewhere');
    } finally {
      subs.forEach((s) => s.unsubscribe());
      await http().put(`/pipelines/${tutorial.pipeline.name}`).send(tutorial.pipeline).expect(200);
    }
    // A definition deleted elsewhere: its resources are refused once the watch brings it.
    const { definitions } = await openBuckets(ctx);
    await http().post('/resource-definitions').send({ ...tutorial.definition, name: 'short-lived' }).expect(201);
    await http().post('/resources').send({ name: 'sl-1', resource: 'short-lived', spec: { repository: 'r' } }).expect(201);
    await definitions.delete('short-lived');
    await eventually(async () => ((await http().post('/resources').send({ name: `sl-${Date.now()}`, resource: 'short-lived', spec: { repository: 'r' } })).status === 400 ? true : undefined), 'a resource of the deleted definition refused');
    // One deleted through this gateway: refused by the very next start.
    await http().post('/resource-definitions').send({ ...tutorial.definition, name: 'deleted-here' }).expect(201);
    await http().post('/resources').send({ name: 'dh-1', resource: 'deleted-here', spec: { repository: 'r' } }).expect(201);
    await http().delete('/resources/deleted-here/dh-1').expect((r) => expect(r.status).toBeLessThan(300));
    await http().delete('/resource-definitions/deleted-here').expect((r) => expect(r.status).toBeLessThan(300));
    await http().post('/resources').send({ name: 'dh-2', resource: 'deleted-here', spec: { repository: 'r' } }).expect(400);
  });

  it('terminates garbage on a run\'s log, drops records of unknown runs, and keeps folding', async () => {
    const id = await startRun('after-garbage');
    const other = '0'.repeat(26);
    // Garbage and hand-made records of an unknown run: against the protocol on purpose.
    nats.wire?.expectViolations(new RegExp(`^conveyor\\.steps\\.${other}\\.`));
    await ctx.js.publish(ctx.subjects.runEnd(other), 'this is not json');
    await ctx.js.publish(ctx.subjects.stepRecord(other, '1', 'claim'), JSON.stringify({ v: 1, kind: 'exploded', runId: other, at: new Date().toISOString() }));
    await ctx.js.publish(ctx.subjects.runEnd(other), JSON.stringify({ v: MESSAGE_VERSION, kind: 'end', runId: other, status: 'succeeded', at: new Date().toISOString() }));
    await claim(await firstWork(id), 'agent-a', 'm1');
    await runWhere(id, (r) => r.steps[0].status === 'running', 'the valid record folded');
    expect((await getRun(id)).status).toBe('running');
    // Nothing is left unacked for redelivery.
    await eventually(async () => {
      const info = await ctx.jsm.consumers.info(ctx.subjects.runsStream, 'gateway-runs');
      return info.num_ack_pending === 0 && info.num_pending === 0 ? info : undefined;
    }, 'the projector to have acked or terminated everything');
    const info = await ctx.jsm.consumers.info(ctx.subjects.runsStream, 'gateway-runs');
    expect(info.config.ack_policy).toBe(AckPolicy.Explicit);
  });

  it('cancels a live run: 202, cancelRequested, and a cancel signal on core NATS', async () => {
    const id = await startRun('cancel-me');
    const sub = ctx.nc.subscribe(ctx.subjects.cancel(id), { max: 1 });
    const signal = (async () => {
      for await (const m of sub) return m.json<{ runId: string }>();
      return undefined;
    })();
    await ctx.nc.flush();
    const res = await http().post(`/runs/${id}/cancel`).expect(202);
    expect(res.body).toMatchObject({ id, status: 'queued', cancelRequested: true });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 5000)));
    expect(await Promise.race([signal, timeout]).finally(() => clearTimeout(timer))).toMatchObject({ runId: id });
    sub.unsubscribe();
    expect((await getRun(id)).cancelRequested).toBe(true);
    // Asking again is harmless while the run has not ended.
    await http().post(`/runs/${id}/cancel`).expect(202);
  });

  it('refuses to cancel a run that already ended (409)', async () => {
    const id = await startRun('finish-me');
    expect((await log.writeTransition({ kind: 'end', end: { v: MESSAGE_VERSION, kind: 'end', runId: id, status: 'succeeded', at: new Date().toISOString() } }, await expectAt(id))).stored).toBe(true);
    await runWhere(id, (r) => r.status === 'succeeded', 'run succeeded');
    const res = await http().post(`/runs/${id}/cancel`).expect(409);
    expect(res.body).toEqual({ statusCode: 409, error: 'Conflict', message: `run ${id} already ended (succeeded); there is nothing to cancel` });
    expect((await getRun(id)).cancelRequested).toBe(false);
  });

  it('lists runs newest first, filtered and limited, and validates the query', async () => {
    const all = (await http().get('/runs').expect(200)).body as Run[];
    expect(all.length).toBeGreaterThanOrEqual(6);
    expect(all.map((r) => r.id)).toEqual([...all.map((r) => r.id)].sort().reverse());
    expect((await http().get('/runs?limit=2').expect(200)).body.map((r: Run) => r.id)).toEqual(all.slice(0, 2).map((r) => r.id));
    const byResource = (await http().get('/runs?resource=build-app&pipeline=flutter-pipeline&type=flutter-builder').expect(200)).body as Run[];
    expect(byResource.map((r) => r.resource.version)).toEqual([2, 1]);
    expect((await http().get('/runs?pipeline=no-such').expect(200)).body).toEqual([]);
    for (const q of ['limit=0', 'limit=501', 'limit=ten', 'status=done', 'pipeline=Bad.Name', 'resource=a%2Fb']) {
      const res = await http().get(`/runs?${q}`).expect(400);
      expect(res.body.statusCode).toBe(400);
    }
  });

  it('answers 404 for an unknown run and 400 for a malformed id', async () => {
    await http().get(`/runs/${'0'.repeat(26)}`).expect(404);
    await http().post(`/runs/${'0'.repeat(26)}/cancel`).expect(404);
    for (const bad of ['abc', 'A'.repeat(26), '..%2F' + '0'.repeat(23), '0'.repeat(27)]) {
      await http().get(`/runs/${bad}`).expect(400);
      await http().post(`/runs/${bad}/cancel`).expect(400);
    }
  });

  it('folds a run whose whole log came at once with one write, and never puts it into the open-runs index', async () => {
    // The log of a one-step run, written while no gateway runs (another copy started it, and
    // this one comes up to fold it): its first record and its end reach the projector together.
    await gw.close();
    const id = newRunId();
    const pipeline = { name: 'one-step', description: '', resource: tutorial.definition.name, steps: [{ id: 's1', name: 'only', driver: 'container-start' }], createdAt: '', updatedAt: '' };
    const resource = { name: 'whole-log', resource: tutorial.definition.name, spec: { repository: 'r' }, metadata: {}, version: 1, createdAt: new Date().toISOString() };
    const first = firstStepMessage(newRun(id, pipeline, resource), resource);
    const started = await log.start(first, 5_000);
    await handOff(first, { status: 'succeeded', output: { success: true } });
    expect(started.stored).toBe(true);
    const writes: string[] = [];
    const subs = [`$KV.${ctx.subjects.bucket('runs')}.${id}`, `$KV.${ctx.subjects.bucket('open-runs')}.${id}`].map((s) =>
      ctx.nc.subscribe(s, { callback: (_e, m) => void writes.push(m.subject.split('.')[1]) }),
    );
    await ctx.nc.flush();
    try {
      gw = await startGateway(nats.url);
      const run = await runWhere(id, (r) => r.status === 'succeeded', 'the run folded');
      expect(run.steps[0]).toMatchObject({ status: 'succeeded', agent: 'agent-a' });
      await ctx.nc.flush();
    } finally {
      subs.forEach((s) => s.unsubscribe());
    }
    // Its record made from its first work, then both records folded at once; no index entry put
    // at its start and deleted at its end (before: one delete, or a put and a delete).
    expect(writes).toEqual([ctx.subjects.bucket('runs'), ctx.subjects.bucket('runs')]);
  });

  it('leaves nothing in the open-runs index for a run that ended: no tombstone, its key is purged from the stream', async () => {
    // A KV delete would keep a tombstone per run for the bucket's whole max age (30 days), and
    // the reconciler lists the index every check: it would read every run of the month each time.
    const id = newRunId();
    const pipeline = { name: 'one-step', description: '', resource: tutorial.definition.name, steps: [{ id: 's1', name: 'only', driver: 'container-start' }], createdAt: '', updatedAt: '' };
    const resource = { name: 'open-runs', resource: tutorial.definition.name, spec: { repository: 'r' }, metadata: {}, version: 1, createdAt: new Date().toISOString() };
    const first = firstStepMessage(newRun(id, pipeline, resource), resource);
    expect((await log.start(first, 5_000)).stored).toBe(true);
    const stream = `KV_${ctx.subjects.bucket('open-runs')}`;
    const subject = `$KV.${ctx.subjects.bucket('open-runs')}.${id}`;
    const stored = async () => (await ctx.jsm.streams.info(stream, { subjects_filter: subject })).state.subjects?.[subject] ?? 0;
    await eventually(async () => ((await stored()) === 1 ? true : undefined), 'the open run indexed');
    await handOff(first, { status: 'succeeded', output: { success: true } });
    await runWhere(id, (r) => r.status === 'succeeded', 'the run folded');
    await eventually(async () => ((await stored()) === 0 ? true : undefined), 'nothing left of it in the index');
  });

});

/** GET /runs over a bucket of many runs: what a page costs, and how long records are kept. */
describe('runs at scale', () => {
  jest.setTimeout(30_000);
  const STORED = 2_000;
  const SCAN = 1_000;
  let nats: NatsServer;
  let gw: RunningGateway;
  let ctx: JetStreamContext;
  /** Run ids newest first; every 500th run is of pipeline "rare", the rest of "common". */
  const ids: string[] = [];
  /** ids[n] was made n seconds before this. */
  let newest = 0;
  const http = () => request(gw.url);
  const runsStream = () => `KV_${ctx.subjects.bucket('runs')}`;

  /**
   * Counts the requests that read stored run records, as the NATS server receives them: a
   * plain subscriber on the JetStream API subjects gets a copy of each (and answers none).
   */
  const countReads = async <T>(what: () => Promise<T>): Promise<{ result: T; reads: number; listings: number; indexReads: number }> => {
    let reads = 0;
    let listings = 0;
    let indexReads = 0;
    const index = ctx.subjects.runIndexStream;
    const subs = [
      ctx.nc.subscribe(`$JS.API.DIRECT.GET.${runsStream()}.>`, { callback: () => void reads++ }),
      ctx.nc.subscribe(`$JS.API.STREAM.MSG.GET.${runsStream()}`, { callback: () => void reads++ }),
      // Listing the bucket's keys is a stream info request with a subjects filter.
      ctx.nc.subscribe(`$JS.API.STREAM.INFO.${runsStream()}`, { callback: () => void listings++ }),
      ctx.nc.subscribe(`$JS.API.DIRECT.GET.${index}`, { callback: () => void indexReads++ }),
      ctx.nc.subscribe(`$JS.API.DIRECT.GET.${index}.>`, { callback: () => void indexReads++ }),
    ];
    await ctx.nc.flush();
    try {
      const result = await what();
      await ctx.nc.flush();
      return { result, reads, listings, indexReads };
    } finally {
      subs.forEach((s) => s.unsubscribe());
    }
  };

  beforeAll(async () => {
    nats = await NatsServer.start();
    // The bucket exists before the gateway starts, without a limit: as made by an older version.
    ctx = await connectJetStream(loadConfig({ CONVEYOR_NATS_URL: nats.url }, { name: 'runs-at-scale-test' }));
    const { runs } = await openBuckets(ctx);
    expect((await ctx.jsm.streams.info(runsStream())).config.max_age).toBe(0);
    const now = (newest = Date.now());
    for (let i = 0; i < STORED; i++) ids.push(newRunId(now - i * 1_000));
    const record = (n: number): Run => ({
      id: ids[n],
      pipeline: { name: n % 500 === 0 ? 'rare' : 'common', resource: 'thing', steps: [] },
      resource: { type: 'thing', name: `r${n}`, version: 1 },
      status: n % 2 ? 'succeeded' : 'failed',
      steps: [],
      cancelRequested: false,
      createdAt: new Date(now - n * 1_000).toISOString(),
    });
    // Written oldest first, as runs are made, 200 at a time.
    for (let end = STORED; end > 0; end -= 200) {
      const batch = Array.from({ length: 200 }, (_, k) => end - 1 - k);
      await Promise.all(batch.map((n) => runs.put(ids[n], JSON.stringify(record(n)))));
    }
    gw = await startGateway(nats.url, { CONVEYOR_RUNS_LIST_SCAN: String(SCAN) });
  }, 60_000);
  afterAll(async () => {
    await ctx?.nc.close();
    await gw?.close();
    await nats?.dispose();
  });

  it(`reads about "limit" run records for a page, of ${STORED} stored, and never lists the bucket's keys`, async () => {
    for (const limit of [1, 10, 50, 500]) {
      const { result, reads, listings, indexReads } = await countReads(() => http().get(`/runs?limit=${limit}`).expect(200));
      expect((result.body as Run[]).map((r) => r.id)).toEqual(ids.slice(0, limit));
      expect(reads).toBeGreaterThan(0);
      expect(reads).toBeLessThanOrEqual(limit);
      expect(listings).toBe(0);
      // The run index's last entries: one batch of direct gets per 128 runs.
      expect(indexReads).toBeLessThanOrEqual(Math.ceil(limit / 128));
    }
    // The default page is 50.
    const { result, reads } = await countReads(() => http().get('/runs').expect(200));
    expect(result.body).toHaveLength(50);
    expect(reads).toBeLessThanOrEqual(50);
  });

  it('pages through every stored run with the Link header, each once, newest first', async () => {
    const seen: string[] = [];
    let next: string | undefined = '/runs?limit=500';
    for (let page = 0; next && page < STORED / 500 + 2; page++) {
      const res: request.Response = await http().get(next).expect(200);
      seen.push(...(res.body as Run[]).map((r) => r.id));
      next = /<([^>]+)>; rel="next"/.exec(res.headers.link ?? '')?.[1];
    }
    expect(seen).toEqual(ids);
    // A cursor whose run is not in the index (expired, say) pages on by id.
    const gone = newRunId(newest - 999_500);
    expect((await http().get(`/runs?limit=3&before=${gone}`).expect(200)).body.map((r: Run) => r.id)).toEqual(ids.slice(1_000, 1_003));
  });

  it(`a filtered page reads at most CONVEYOR_RUNS_LIST_SCAN (${SCAN}) records and says when it stopped there`, async () => {
    // Matches spread over the newest records: read until "limit" match.
    const failed = await countReads(() => http().get('/runs?status=failed&limit=20').expect(200));
    expect((failed.result.body as Run[]).map((r) => r.id)).toEqual(ids.filter((_, n) => n % 2 === 0).slice(0, 20));
    expect(failed.reads).toBeLessThanOrEqual(40 + 128);
    expect(failed.result.headers['conveyor-runs-partial']).toBeUndefined();
    // Rare matches: the scan stops at its bound, and the answer says how far it looked.
    const rare = await countReads(() => http().get('/runs?pipeline=rare&limit=5').expect(200));
    expect((rare.result.body as Run[]).map((r) => r.id)).toEqual([ids[0], ids[500]]);
    expect(rare.reads).toBeLessThanOrEqual(SCAN);
    expect(rare.result.headers['conveyor-runs-partial']).toBe(String(SCAN));
  });

  it('gives the runs bucket its retention in place (CONVEYOR_RUNS_MAX_AGE, default 30 days), keeping what it stored', async () => {
    const info = await ctx.jsm.streams.info(runsStream());
    expect(info.config.max_age).toBe(nanos(30 * 86_400_000));
    expect(info.state.messages).toBe(STORED);
    // The runs stored before the index existed got their entries at the first start, oldest first.
    expect((await ctx.jsm.streams.info(ctx.subjects.runIndexStream)).state.messages).toBe(STORED);
    // Another setting updates the same stream (not a new one).
    const other = await startGateway(nats.url, { CONVEYOR_RUNS_MAX_AGE: '90d' });
    try {
      const after = await ctx.jsm.streams.info(runsStream());
      expect(after.config.max_age).toBe(nanos(90 * 86_400_000));
      expect(after.created).toBe(info.created);
      expect(after.state.messages).toBe(STORED);
      expect((await ctx.jsm.streams.info(ctx.subjects.runIndexStream)).state.messages).toBe(STORED);
    } finally {
      await other.close();
    }
  }, 90_000); // a second gateway starting beside thousands of stored runs: seen over 30 s on a loaded 2-core CI

  it('drops a run record CONVEYOR_RUNS_MAX_AGE after its last change', async () => {
    const short = await NatsServer.start();
    const gw2 = await startGateway(short.url, { CONVEYOR_RUNS_MAX_AGE: '2s' });
    const c2 = await connectJetStream(loadConfig({ CONVEYOR_NATS_URL: short.url }, { name: 'runs-expiry-test' }));
    try {
      const { runs } = await openBuckets(c2);
      const id = newRunId();
      await runs.put(id, JSON.stringify({ id, pipeline: { name: 'p', resource: 't', steps: [] }, resource: { type: 't', name: 'r', version: 1 }, status: 'succeeded', steps: [], cancelRequested: false, createdAt: new Date().toISOString() }));
      await request(`${gw2.url}`).get(`/runs/${id}`).expect(200);
      await eventually(async () => ((await request(gw2.url).get(`/runs/${id}`)).status === 404 ? true : undefined), 'the record to expire', 10_000, 200);
      expect((await request(gw2.url).get('/runs').expect(200)).body).toEqual([]);
    } finally {
      await c2.nc.close();
      await gw2.close();
      await short.dispose();
    }
  });
});
