import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, headers } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Headers, PROTOCOL_VERSION, type Run, type StepDone } from '@conveyor/contracts';
import { NatsServer } from '../support/nats-server';
import { waitFor } from '../support/processes';
import { TestSystem } from '../support/system';

jest.setTimeout(120_000);

/**
 * Pipelines as graphs, on real agents: steps whose needs have ended run side by side, a step
 * that needs several starts exactly once, failures skip what depends on them and (fail-fast)
 * cancel what runs beside them, `always` steps run last whatever happened.
 */
describe('pipelines as graphs', () => {
  let sys: TestSystem;

  beforeAll(async () => {
    sys = await TestSystem.on(await NatsServer.start(), { CONVEYOR_CONCURRENCY: '4' }, { CONVEYOR_RECONCILE_INTERVAL: '1s' });
    await sys.startDriver(['alpha', 'beta', 'cleanup']);
    await sys.startDriver(['alpha', 'beta', 'cleanup']);
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const starts = (id: string, step: string) => sys.journalOf(id).filter((j) => j.step === step && j.what === 'start');
  const step = (run: Run, id: string) => run.steps.find((s) => s.id === id)!;
  const overlap = (a: { startedAt?: string; finishedAt?: string }, b: { startedAt?: string; finishedAt?: string }) =>
    Date.parse(a.startedAt!) < Date.parse(b.finishedAt!) && Date.parse(b.startedAt!) < Date.parse(a.finishedAt!);

  it('fans out to steps that run side by side, fans in to a step that starts once, and ends with the always step', async () => {
    const id = await sys.run([
      { id: 'start', driver: 'alpha' },
      { id: 'b1', driver: 'beta', needs: ['start'], config: { sleepMs: 1_500 } },
      { id: 'b2', driver: 'beta', needs: ['start'], config: { sleepMs: 1_500 } },
      { id: 'b3', driver: 'alpha', needs: ['start'], config: { sleepMs: 1_500 } },
      { id: 'join', driver: 'alpha', needs: ['b1', 'b2', 'b3'] },
      { id: 'stop', driver: 'cleanup', always: true },
    ]);
    const run = await sys.waitForRun(id);
    expect(run.status).toBe('succeeded');
    expect(run.steps.map((s) => [s.id, s.status, s.needs])).toEqual([
      ['start', 'succeeded', []],
      ['b1', 'succeeded', ['start']],
      ['b2', 'succeeded', ['start']],
      ['b3', 'succeeded', ['start']],
      ['join', 'succeeded', ['b1', 'b2', 'b3']],
      ['stop', 'succeeded', ['join']],
    ]);
    expect(overlap(step(run, 'b1'), step(run, 'b2'))).toBe(true);
    expect(overlap(step(run, 'b2'), step(run, 'b3'))).toBe(true);
    // Well under the sum of the three 1.5 s steps.
    expect(Date.parse(step(run, 'b3').finishedAt!) - Date.parse(step(run, 'b1').startedAt!)).toBeLessThan(3_500);
    for (const s of ['start', 'b1', 'b2', 'b3', 'join', 'stop']) expect(starts(id, s)).toHaveLength(1);
    expect(Date.parse(step(run, 'join').startedAt!)).toBeGreaterThanOrEqual(Math.max(...['b1', 'b2', 'b3'].map((s) => Date.parse(step(run, s).finishedAt!))));
  });

  it('a fan-in whose needs end at the same instant on different agents starts exactly once (20 runs)', async () => {
    const pipeline = await sys.pipeline([
      { id: 'a', driver: 'alpha', needs: [] },
      { id: 'b', driver: 'beta', needs: [] },
      { id: 'c', driver: 'alpha', needs: [] },
      { id: 'd', driver: 'beta', needs: [] },
      { id: 'join', driver: 'alpha', needs: ['a', 'b', 'c', 'd'] },
    ]);
    const ids = await Promise.all(Array.from({ length: 20 }, () => sys.trigger(pipeline)));
    for (const id of ids) {
      const run = await sys.waitForRun(id);
      expect(run.status).toBe('succeeded');
      expect(starts(id, 'join')).toHaveLength(1);
      expect(step(run, 'join').attempts).toBe(1);
    }
  });

  it('a failure skips what depends on it, cancels what runs beside it (fail-fast), and the always step still runs', async () => {
    const id = await sys.run([
      { id: 'start', driver: 'alpha' },
      { id: 'bad', driver: 'beta', needs: ['start'], config: { sleepMs: 300, failTimes: 9 } },
      { id: 'slow', driver: 'alpha', needs: ['start'], config: { sleepMs: 20_000 } },
      { id: 'join', driver: 'alpha', needs: ['bad', 'slow'] },
      { id: 'stop', driver: 'cleanup', needs: ['join'], always: true },
    ]);
    const run = await sys.waitForRun(id, undefined, 15_000);
    expect(run.status).toBe('failed');
    expect(run.message).toBe('step "step 2" failed: failed on attempt 1');
    expect(run.steps.map((s) => [s.id, s.status])).toEqual([
      ['start', 'succeeded'],
      ['bad', 'failed'],
      ['slow', 'cancelled'],
      ['join', 'skipped'],
      ['stop', 'succeeded'],
    ]);
    expect(step(run, 'slow').message).toBe('stopped because step "step 2" failed: failed on attempt 1 (the pipeline fails fast)');
    expect(starts(id, 'join')).toHaveLength(0);
    expect(starts(id, 'stop')).toHaveLength(1);
  });

  it('with failFast: false the steps beside a failure finish; what depends on it is skipped', async () => {
    const id = await sys.run(
      [
        { id: 'bad', driver: 'beta', needs: [], config: { failTimes: 9 } },
        { id: 'slow', driver: 'alpha', needs: [], config: { sleepMs: 1_500 } },
        { id: 'after-slow', driver: 'alpha', needs: ['slow'] },
        { id: 'join', driver: 'alpha', needs: ['bad', 'after-slow'] },
        { id: 'stop', driver: 'cleanup', needs: ['join'], always: true },
      ],
      { failFast: false },
    );
    const run = await sys.waitForRun(id);
    expect(run.status).toBe('failed');
    expect(run.steps.map((s) => [s.id, s.status])).toEqual([
      ['bad', 'failed'],
      ['slow', 'succeeded'],
      ['after-slow', 'succeeded'],
      ['join', 'skipped'],
      ['stop', 'succeeded'],
    ]);
  });

  it('a cancelled graph run stops its running steps, skips the rest and runs its always step', async () => {
    const id = await sys.run([
      { id: 'a', driver: 'alpha', needs: [], config: { sleepMs: 20_000 } },
      { id: 'b', driver: 'beta', needs: [], config: { sleepMs: 20_000 } },
      { id: 'c', driver: 'alpha', needs: ['a', 'b'] },
      { id: 'stop', driver: 'cleanup', needs: ['c'], always: true },
    ]);
    await sys.waitForRun(id, ['running']);
    await new Promise((r) => setTimeout(r, 500));
    await sys.api.ok('POST', `/runs/${id}/cancel`);
    const run = await sys.waitForRun(id, undefined, 15_000);
    expect(run.status).toBe('cancelled');
    expect(run.steps.map((s) => [s.id, s.status])).toEqual([
      ['a', 'cancelled'],
      ['b', 'cancelled'],
      ['c', 'skipped'],
      ['stop', 'succeeded'],
    ]);
  });

  it('a writer that stopped between a step\'s end and what follows it: the reconciler writes what follows, once', async () => {
    // The first step's driver has no agent; its end is written as a writer would, and nothing else.
    const id = await sys.run([
      { id: 'a', driver: 'nobody', needs: [] },
      { id: 'b', driver: 'alpha', needs: ['a'] },
      { id: 'c', driver: 'beta', needs: ['a'] },
    ]);
    const nc = await connect({ servers: sys.nats.url });
    try {
      const done: StepDone = { v: 1, kind: 'done', runId: id, from: { stepIndex: 0, stepId: 'a', driver: 'nobody', attempt: 1, status: 'succeeded', at: new Date().toISOString() }, at: new Date().toISOString() };
      const h = headers();
      h.set(Headers.Protocol, PROTOCOL_VERSION);
      await jetstream(nc).publish(`conveyor.steps.${id}.a.done`, JSON.stringify(done), { headers: h });
    } finally {
      await nc.close();
    }
    const run = await sys.waitForRun(id, undefined, 20_000);
    expect(run.status).toBe('succeeded');
    expect(run.steps.map((s) => [s.id, s.status])).toEqual([['a', 'succeeded'], ['b', 'succeeded'], ['c', 'succeeded']]);
    expect(starts(id, 'b')).toHaveLength(1);
    expect(starts(id, 'c')).toHaveLength(1);
  });

  it('a matrix step runs once per combination (at most maxParallel at once); a step after it waits for all of them', async () => {
    const id = await sys.run([
      { id: 'start', driver: 'alpha' },
      { id: 'test', driver: 'beta', matrix: { node: [18, 20, 22], os: ['linux'], include: [{ node: 16, os: 'mac' }] }, maxParallel: 2, config: { sleepMs: 600 } },
      { id: 'report', driver: 'alpha' },
    ]);
    const run = await sys.waitForRun(id);
    expect(run.status).toBe('succeeded');
    expect(run.steps.map((s) => [s.id, s.name, s.needs, s.matrix])).toEqual([
      ['start', 'step 1', [], undefined],
      ['test-1', 'step 2 (node=18, os=linux)', ['start'], { node: 18, os: 'linux' }],
      ['test-2', 'step 2 (node=20, os=linux)', ['start'], { node: 20, os: 'linux' }],
      ['test-3', 'step 2 (node=22, os=linux)', ['start'], { node: 22, os: 'linux' }],
      ['test-4', 'step 2 (node=16, os=mac)', ['start'], { node: 16, os: 'mac' }],
      ['report', 'step 3', ['test-1', 'test-2', 'test-3', 'test-4'], undefined],
    ]);
    // Each expansion's driver got its values in config.matrix.
    expect(run.pipeline.steps.find((s) => s.id === 'test-4')?.config).toEqual({ sleepMs: 600, matrix: { node: 16, os: 'mac' } });
    // Never more than two at once: at each expansion's start, fewer than two others were running.
    const tests = run.steps.filter((s) => s.matrixOf === 'test');
    for (const t of tests) {
      const at = Date.parse(t.startedAt!);
      expect(tests.filter((o) => o !== t && Date.parse(o.startedAt!) <= at && at < Date.parse(o.finishedAt!)).length).toBeLessThan(2);
    }
    expect(Date.parse(step(run, 'report').startedAt!)).toBeGreaterThanOrEqual(Math.max(...tests.map((t) => Date.parse(t.finishedAt!))));
  });

  it('refuses a matrix of 10,000 combinations, a bad axis and maxParallel without a matrix, naming the step; nothing is stored', async () => {
    const post = (steps: object[]) => sys.api.request<{ message: string }>('POST', '/pipelines', { name: 'too-wide', resource: 'thing', steps });
    const axis = Array.from({ length: 100 }, (_, i) => i);
    const big = await post([{ id: 'a', name: 'a', driver: 'alpha', matrix: { x: axis, y: axis } }]);
    expect(big.status).toBe(400);
    expect(big.body.message).toBe('steps.0 ("a") matrix has 10000 combinations; at most 64');
    const bad = await post([{ id: 'a', name: 'a', driver: 'alpha', matrix: { x: [] } }]);
    expect(bad).toMatchObject({ status: 400, body: { message: 'steps.0 ("a") matrix axis "x" must be a non-empty list of strings, numbers or booleans' } });
    const lone = await post([{ id: 'a', name: 'a', driver: 'alpha', maxParallel: 2 }]);
    expect(lone).toMatchObject({ status: 400, body: { message: 'steps.0 ("a") has maxParallel but no matrix' } });
    expect((await sys.api.request('GET', '/pipelines/too-wide')).status).toBe(404);
  });

  it('when: a step runs on its condition over the run\'s inputs or is skipped with the reason; a failure-status step runs after a failure', async () => {
    const pipeline = await sys.pipeline([
      { id: 'build', driver: 'alpha' },
      { id: 'deploy', driver: 'beta', when: { expr: "ref == 'main' && steps.build.status == 'succeeded'" } },
      { id: 'tag', driver: 'beta', needs: ['build'], when: { expr: "ref.startsWith('release/')" } },
      { id: 'on-failure', driver: 'cleanup', needs: ['deploy', 'tag'], when: { status: ['failure'] } },
    ]);
    const start = async (name: string, spec: object) => (await sys.api.ok<{ runid: string }>('POST', '/resources', { name, resource: 'thing', pipeline, spec })).runid;
    const main = await sys.waitForRun(await start('when-main', { ref: 'main' }));
    expect(main.status).toBe('succeeded');
    expect(main.steps.map((s) => [s.id, s.status, s.message])).toEqual([
      ['build', 'succeeded', 'ok'],
      ['deploy', 'succeeded', 'ok'],
      ['tag', 'skipped', "when.expr is false: ref.startsWith('release/')"],
      ['on-failure', 'skipped', 'when.status is [failure] and no step of the run failed'],
    ]);
    // A first step's condition counts too.
    const first = await sys.pipeline([{ id: 'only-main', driver: 'alpha', when: { expr: "ref == 'main'" } }, { id: 'after', driver: 'beta', needs: [], when: { status: ['always'] } }]);
    const skippedFirst = await sys.waitForRun((await sys.api.ok<{ runid: string }>('POST', '/resources', { name: 'when-first', resource: 'thing', pipeline: first, spec: { ref: 'dev' } })).runid);
    expect(skippedFirst.steps.map((s) => [s.id, s.status])).toEqual([['only-main', 'skipped'], ['after', 'succeeded']]);
    expect(starts(skippedFirst.id, 'only-main')).toHaveLength(0);
    const other = await sys.waitForRun(await start('when-dev', { ref: 'dev' }));
    expect(other.steps.map((s) => [s.id, s.status])).toEqual([['build', 'succeeded'], ['deploy', 'skipped'], ['tag', 'skipped'], ['on-failure', 'skipped']]);
    expect(starts(other.id, 'deploy')).toHaveLength(0);

    const failing = await sys.run([
      { id: 'build', driver: 'alpha', config: { failTimes: 9 } },
      { id: 'on-failure', driver: 'cleanup', when: { status: ['failure'] } },
      { id: 'on-success', driver: 'cleanup', needs: ['build'], when: { status: ['success'] } },
    ]);
    const failed = await sys.waitForRun(failing);
    expect(failed.status).toBe('failed');
    expect(failed.steps.map((s) => [s.id, s.status])).toEqual([['build', 'failed'], ['on-failure', 'succeeded'], ['on-success', 'skipped']]);
  });

  it('when: an expression that does not compile is a 400 naming the step; one that cannot be evaluated fails its step with the reason', async () => {
    const res = await sys.api.request<{ message: string }>('POST', '/pipelines', { name: 'bad-when', resource: 'thing', steps: [{ id: 'a', name: 'a', driver: 'alpha', when: { expr: 'ref ==' } }] });
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/^steps\.0 \("a"\) when\.expr does not compile: /);
    expect((await sys.api.request('GET', '/pipelines/bad-when')).status).toBe(404);
    const id = await sys.run([{ id: 'a', driver: 'alpha' }, { id: 'b', driver: 'beta', when: { expr: 'nosuch.field == 1' } }, { id: 'c', driver: 'cleanup', always: true }]);
    const run = await sys.waitForRun(id);
    expect(run.status).toBe('failed');
    expect(run.steps.map((s) => [s.id, s.status])).toEqual([['a', 'succeeded'], ['b', 'failed'], ['c', 'succeeded']]);
    expect(step(run, 'b').message).toMatch(/^when\.expr could not be evaluated: /);
    expect(starts(id, 'b')).toHaveLength(0);
  });

  it('re-runs only what failed: the succeeded steps are carried over with their outputs and do not run again; the runs link each other', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rerun-'));
    const broken = join(dir, 'broken');
    writeFileSync(broken, '');
    try {
      const id = await sys.run([
        { id: 'a', driver: 'alpha' },
        { id: 'b', driver: 'beta', needs: ['a'] },
        // After b: side by side, c's failure could stop b before it ran (fail-fast skips what has not).
        { id: 'c', driver: 'beta', needs: ['a', 'b'], config: { failWhileFile: broken } },
        { id: 'd', driver: 'alpha', needs: ['b', 'c'], config: { sleepMs: '${{ steps.b.outputs.attempt }}' } },
        { id: 'e', driver: 'cleanup', needs: ['d'], always: true },
      ]);
      const first = await sys.waitForRun(id);
      expect(first.steps.map((s) => [s.id, s.status])).toEqual([['a', 'succeeded'], ['b', 'succeeded'], ['c', 'failed'], ['d', 'skipped'], ['e', 'succeeded']]);
      // Not before it ended; and a run with nothing failed has nothing to re-run only.
      const live = await sys.run([{ id: 'x', driver: 'alpha', config: { sleepMs: 3_000 } }]);
      await sys.waitForRun(live, ['running']);
      const early = await sys.api.request<{ message: string }>('POST', `/runs/${live}/rerun`);
      expect(early.status).toBe(409);
      expect(early.body.message).toMatch(/has not ended \((queued|running)\)/);
      await sys.waitForRun(live);
      const nothing = await sys.api.request('POST', `/runs/${live}/rerun`, { failed: true });
      expect(nothing.status).toBe(409);

      rmSync(broken);
      const { runid } = await sys.api.ok<{ runid: string }>('POST', `/runs/${id}/rerun`, { failed: true });
      const again = await sys.waitForRun(runid);
      expect(again.status).toBe('succeeded');
      expect(again.rerunOf).toBe(id);
      expect(again.steps.map((s) => [s.id, s.status, s.reusedFrom])).toEqual([
        ['a', 'succeeded', id],
        ['b', 'succeeded', id],
        ['c', 'succeeded', undefined],
        ['d', 'succeeded', undefined],
        ['e', 'succeeded', undefined],
      ]);
      expect(step(again, 'b').data).toEqual(step(first, 'b').data);
      expect(starts(runid, 'a')).toHaveLength(0);
      expect(starts(runid, 'b')).toHaveLength(0);
      expect(starts(runid, 'c')).toHaveLength(1);
      expect((await sys.api.run(id)).reruns).toEqual([runid]);

      // The whole run again: every step runs.
      const whole = await sys.api.ok<{ runid: string }>('POST', `/runs/${id}/rerun`);
      const all = await sys.waitForRun(whole.runid);
      expect(all.steps.every((s) => s.status === 'succeeded' && !s.reusedFrom)).toBe(true);
      expect(starts(whole.runid, 'a')).toHaveLength(1);
      expect((await sys.api.run(id)).reruns).toEqual([runid, whole.runid]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('approvals: a step waits for a person; approve lets the run go on, reject fails it, a second decision is a 409, and the wait times out', async () => {
    const steps = [
      { id: 'build', driver: 'alpha' },
      { id: 'gate', driver: 'approval', approval: true, timeout: 600 },
      { id: 'deploy', driver: 'beta' },
      { id: 'stop', driver: 'cleanup', always: true },
    ];
    const post = (path: string, body: object = {}) => sys.api.request<{ message: string }>('POST', path, body);
    const waiting = async (id: string) => {
      return waitFor(`run ${id} to wait for approval`, async () => ((await sys.api.run(id)).steps[1].status === 'waiting' ? true : undefined), 15_000, 50);
    };

    const approved = await sys.run(steps);
    await waiting(approved);
    expect((await post(`/runs/${approved}/steps/build/approve`)).status).toBe(409);
    const ok = await post(`/runs/${approved}/steps/gate/approve`, { comment: 'ship it' });
    expect(ok.status).toBe(200);
    const twice = await post(`/runs/${approved}/steps/gate/reject`);
    expect(twice.status).toBe(409);
    expect(twice.body.message).toMatch(/is not waiting for a decision \(it ended succeeded: approved by an unauthenticated caller/);
    const run = await sys.waitForRun(approved);
    expect(run.status).toBe('succeeded');
    expect(step(run, 'gate').message).toMatch(/^approved by an unauthenticated caller .* at \d{4}-.*: ship it$/);
    expect(step(run, 'gate').waitingSince).toBeDefined();
    expect(starts(approved, 'deploy')).toHaveLength(1);

    const rejected = await sys.run(steps);
    await waiting(rejected);
    expect((await post(`/runs/${rejected}/steps/gate/reject`, { comment: 'not today' })).status).toBe(200);
    const no = await sys.waitForRun(rejected);
    expect(no.status).toBe('failed');
    expect(no.steps.map((s) => [s.id, s.status])).toEqual([['build', 'succeeded'], ['gate', 'failed'], ['deploy', 'skipped'], ['stop', 'succeeded']]);
    expect(no.message).toMatch(/^step "step 2" failed: rejected by .*: not today$/);

    const late = await sys.run([{ id: 'gate', driver: 'approval', approval: true, timeout: 1 }, { id: 'deploy', driver: 'beta' }]);
    const timedOut = await sys.waitForRun(late, undefined, 20_000);
    expect(timedOut.status).toBe('failed');
    expect(step(timedOut, 'gate').message).toBe('no one approved or rejected it within 1s (approval timed out)');
    expect(starts(late, 'deploy')).toHaveLength(0);

    const reserved = await post('/pipelines', { name: 'uses-approval', resource: 'thing', steps: [{ id: 'a', name: 'a', driver: 'approval' }] });
    expect(reserved.status).toBe(400);
    expect(reserved.body.message).toBe('steps.0.driver "approval" is reserved for approval steps (set "approval": true)');
  });

  it('concurrency groups: runs of one group run one at a time in order, queued with the reason; a queued run can be cancelled; cancelInProgress cancels the running one', async () => {
    const make = async (name: string, concurrency: object, sleepMs: number) => {
      await sys.api.ok('POST', '/pipelines', { name, resource: 'thing', concurrency, steps: [{ id: 'work', name: 'work', driver: 'alpha', config: { sleepMs } }, { id: 'tidy', name: 'tidy', driver: 'cleanup', always: true }] });
    };
    await make('grouped', { group: 'deploy-${{ resource.name }}' }, 700);
    const first = (await sys.api.ok<{ runid: string }>('POST', '/resources', { name: 'site', resource: 'thing', pipeline: 'grouped', spec: { n: 1 } })).runid;
    const second = (await sys.api.ok<{ runid: string }>('PUT', '/resources/thing/site', { spec: { n: 2 } })).runid;
    const third = (await sys.api.ok<{ runid: string }>('PUT', '/resources/thing/site', { spec: { n: 3 } })).runid;
    const fourth = (await sys.api.ok<{ runid: string }>('PUT', '/resources/thing/site', { spec: { n: 4 } })).runid;
    const queued = await sys.api.run(second);
    expect(queued).toMatchObject({ status: 'queued', group: 'deploy-site', message: `queued: run ${first} of concurrency group "deploy-site" is running` });
    expect((await sys.api.run(third)).message).toMatch(/\(1 queued before this one\)$/);
    // A queued run is cancelled where it waits: it never starts.
    await sys.api.ok('POST', `/runs/${third}/cancel`);
    const cancelled = await sys.waitForRun(third, ['cancelled'], 5_000);
    expect(cancelled.message).toBe('the run was cancelled while it waited for its concurrency group');
    const runs = [await sys.waitForRun(first), await sys.waitForRun(second), await sys.waitForRun(fourth)];
    expect(runs.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    for (let i = 1; i < runs.length; i++) expect(Date.parse(runs[i].startedAt!)).toBeGreaterThanOrEqual(Date.parse(runs[i - 1].finishedAt!));
    expect(starts(third, 'work')).toHaveLength(0);

    await make('latest-wins', { group: '${{ pipeline }}', cancelInProgress: true }, 20_000);
    const old = (await sys.api.ok<{ runid: string }>('POST', '/resources', { name: 'lw', resource: 'thing', pipeline: 'latest-wins', spec: {} })).runid;
    await waitFor('the first run to start its step', () => (starts(old, 'work').length ? true : undefined), 10_000, 50);
    await sys.api.ok('POST', '/pipelines', { name: 'latest-wins-fast', resource: 'thing', concurrency: { group: 'latest-wins', cancelInProgress: true }, steps: [{ id: 'work', name: 'work', driver: 'alpha' }] });
    const latest = (await sys.api.ok<{ runid: string }>('POST', '/resources', { name: 'lw2', resource: 'thing', pipeline: 'latest-wins-fast', spec: {} })).runid;
    expect((await sys.waitForRun(old, undefined, 15_000)).status).toBe('cancelled');
    expect((await sys.waitForRun(latest, undefined, 15_000)).status).toBe('succeeded');

    const bad = await sys.api.request<{ message: string }>('POST', '/pipelines', { name: 'bad-group', resource: 'thing', concurrency: { group: '${{ secrets.x }}' }, steps: [{ id: 'a', name: 'a', driver: 'alpha' }] });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toBe('concurrency.group: ${{ secrets.x }} is not one of pipeline, resource.name, resource.type, resource.spec.<key>');
  });
});
