import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestSystem } from '../support/system';
import { NatsServer } from '../support/nats-server';
import { waitFor } from '../support/processes';
import { OtlpReceiver, type ExportedSpan } from '../support/otlp-receiver';

jest.setTimeout(120_000);

/** OTLP span kinds. */
const SERVER = 2;
const PRODUCER = 4;
const CONSUMER = 5;
const ERROR = 2;

/**
 * Traces end to end: the gateway in this process and test driver processes export to a real
 * OTLP/HTTP receiver; a run's spans, from every process, form one tree.
 */
describe('traces', () => {
  let receiver: OtlpReceiver;
  let sys: TestSystem;

  beforeAll(async () => {
    receiver = await OtlpReceiver.start();
    // To the gateway and every driver: short batches, so spans arrive within the test.
    sys = await TestSystem.on(await NatsServer.start(), {}, {
      CONVEYOR_OTEL_ENDPOINT: receiver.url,
      CONVEYOR_OTEL_EXPORT_DELAY: '100ms',
      CONVEYOR_OTEL_SERVICE_NAME: 'gateway',
      // For a webhook trigger's secret.
      CONVEYOR_SECRET_KEY: randomBytes(32).toString('base64'),
    });
    // Two agents on two machines, each the only one of its driver: a run of both crosses processes.
    await sys.startDriver(['tr-alpha'], { CONVEYOR_MACHINE_ID: 'machine-a', CONVEYOR_OTEL_SERVICE_NAME: 'driver-a' });
    await sys.startDriver(['tr-beta'], { CONVEYOR_MACHINE_ID: 'machine-b', CONVEYOR_OTEL_SERVICE_NAME: 'driver-b' });
  });
  afterAll(async () => {
    await sys?.stop();
    await receiver?.close();
  });

  /** The spans of one trace, once `ready` says all that is expected has arrived. */
  const traceOf = (traceId: string, ready: (spans: ExportedSpan[]) => boolean) =>
    waitFor('the run\'s spans at the receiver', () => {
      const spans = receiver.spans.filter((s) => s.traceId === traceId);
      return ready(spans) ? spans : undefined;
    }, 20_000, 100);

  /** The trace a run's `run` span is in (the gateway's span of the run's start). */
  const runSpan = (runId: string) =>
    waitFor(`the run span of ${runId}`, () => receiver.spans.find((s) => s.name === 'run' && s.attributes['conveyor.run.id'] === runId), 20_000, 100);

  it('makes one trace of a run: the request, the run, every step attempt on two agents, and each hand-off', async () => {
    const id = await sys.run([{ driver: 'tr-alpha', retries: 1, config: { failTimes: 1 } }, { driver: 'tr-beta' }]);
    expect((await sys.waitForRun(id)).status).toBe('succeeded');

    const run = await runSpan(id);
    const steps = (spans: ExportedSpan[]) => spans.filter((s) => s.kind === CONSUMER);
    const handOffs = (spans: ExportedSpan[]) => spans.filter((s) => s.kind === PRODUCER);
    const spans = await traceOf(run.traceId, (all) => steps(all).length === 3 && handOffs(all).length === 2 && all.some((s) => s.kind === SERVER));

    // Every span of this run, from every process, is in this one trace.
    expect(receiver.spans.filter((s) => s.attributes['conveyor.run.id'] === id && s.traceId !== run.traceId)).toEqual([]);
    expect(new Set(spans.map((s) => s.service))).toEqual(new Set(['gateway', 'driver-a', 'driver-b']));

    // The request that started it is the root; the run's span its child.
    const request = spans.find((s) => s.kind === SERVER)!;
    expect(request).toMatchObject({ name: 'POST /resources', service: 'gateway', parentSpanId: undefined });
    expect(request.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.route': '/resources', 'http.response.status_code': 201 });
    expect(run.parentSpanId).toBe(request.spanId);

    // A span per attempt, each a child of the run's span, whichever process ran it.
    const attempts = steps(spans).sort((a, b) => `${a.attributes['conveyor.step.id']}${a.attributes['conveyor.attempt']}`.localeCompare(`${b.attributes['conveyor.step.id']}${b.attributes['conveyor.attempt']}`));
    expect(attempts.map((s) => [s.name, s.service, s.parentSpanId, s.status.code === ERROR])).toEqual([
      ['step s1', 'driver-a', run.spanId, true],
      ['step s1', 'driver-a', run.spanId, false],
      ['step s2', 'driver-b', run.spanId, false],
    ]);
    const [failed, retried, second] = attempts;
    expect(failed.attributes).toMatchObject({ 'conveyor.run.id': id, 'conveyor.step.id': 's1', 'conveyor.driver': 'tr-alpha', 'conveyor.agent.id': 'agent-1', 'conveyor.machine': 'machine-a', 'conveyor.attempt': 1, 'conveyor.step.outcome': 'retry' });
    expect(failed.status.message).toBe('failed on attempt 1');
    expect(retried.attributes).toMatchObject({ 'conveyor.driver': 'tr-alpha', 'conveyor.agent.id': 'agent-1', 'conveyor.machine': 'machine-a', 'conveyor.attempt': 2, 'conveyor.step.outcome': 'succeeded' });
    expect(second.attributes).toMatchObject({ 'conveyor.step.id': 's2', 'conveyor.driver': 'tr-beta', 'conveyor.agent.id': 'agent-2', 'conveyor.machine': 'machine-b', 'conveyor.attempt': 1, 'conveyor.step.outcome': 'succeeded' });

    // Each hand-off is a child of the attempt that made it; the next step, on another agent, is
    // linked to the hand-off that wrote its work (its traceparent header).
    const [handOff1, handOff2] = handOffs(spans).sort((a, b) => a.name.localeCompare(b.name));
    expect(handOff1).toMatchObject({ name: 'hand-off s1', service: 'driver-a', parentSpanId: retried.spanId });
    expect(handOff1.attributes).toMatchObject({ 'conveyor.step.outcome': 'succeeded', 'conveyor.handoff.result': 'stored' });
    expect(handOff2).toMatchObject({ name: 'hand-off s2', service: 'driver-b', parentSpanId: second.spanId });
    expect(second.links).toEqual([expect.objectContaining({ traceId: run.traceId, spanId: handOff1.spanId })]);
    // The first step's work was written by the gateway, inside the run's span: no other link.
    expect(failed.links).toEqual([]);
  });

  it("puts the step span's trace and span ids on the app's own log lines written in the step", async () => {
    const driverA = sys.drivers[0];
    const id = await sys.run([{ driver: 'tr-alpha', config: { appLog: 'hello from the handler' } }]);
    expect((await sys.waitForRun(id)).status).toBe('succeeded');
    const run = await runSpan(id);
    const spans = await traceOf(run.traceId, (all) => all.some((s) => s.kind === CONSUMER));
    const step = spans.find((s) => s.kind === CONSUMER)!;
    const line = driverA.logs
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === `run ${id} step s1: hello from the handler`);
    expect(line).toMatchObject({ context: 'TestDriver', runId: id, stepId: 's1', traceId: run.traceId, spanId: step.spanId });
  });

  it('marks a step that failed for good as an error, and a run started by PUT has the PUT as its root', async () => {
    const pipeline = await sys.pipeline([{ driver: 'tr-beta', config: { failTimes: 9 } }]);
    await sys.api.ok('POST', '/resources', { name: 'traced', resource: 'thing', pipeline, spec: {} });
    const first = await sys.api.ok<{ runid: string }>('PUT', '/resources/thing/traced', { pipeline, spec: { again: true } });
    expect((await sys.waitForRun(first.runid)).status).toBe('failed');

    const run = await runSpan(first.runid);
    const spans = await traceOf(run.traceId, (all) => all.some((s) => s.kind === PRODUCER) && all.some((s) => s.kind === SERVER));
    expect(spans.find((s) => s.kind === SERVER)).toMatchObject({ name: 'PUT /resources/:type/:name', parentSpanId: undefined, spanId: run.parentSpanId });
    const step = spans.find((s) => s.kind === CONSUMER)!;
    expect(step.attributes).toMatchObject({ 'conveyor.step.outcome': 'failed', 'conveyor.attempt': 1, 'conveyor.agent.id': 'agent-2' });
    expect(step.status).toMatchObject({ code: ERROR, message: 'failed on attempt 1' });
    expect(spans.find((s) => s.kind === PRODUCER)?.attributes).toMatchObject({ 'conveyor.step.outcome': 'failed', 'conveyor.handoff.result': 'stored' });
  });

  it('sends the spans still batched when a driver shuts down', async () => {
    // A batch delay far beyond the test: only the flush at SIGTERM can send this driver's spans.
    const late = await sys.startDriver(['tr-gamma'], { CONVEYOR_OTEL_EXPORT_DELAY: '10m', CONVEYOR_OTEL_SERVICE_NAME: 'driver-c' });
    const id = await sys.run([{ driver: 'tr-gamma' }]);
    expect((await sys.waitForRun(id)).status).toBe('succeeded');
    const run = await runSpan(id);
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.spans.filter((s) => s.service === 'driver-c')).toEqual([]);
    expect(await late.stop('SIGTERM')).toBe(0);
    const spans = await traceOf(run.traceId, (all) => all.filter((s) => s.service === 'driver-c').length === 2);
    expect(spans.filter((s) => s.service === 'driver-c').map((s) => s.name).sort()).toEqual(['hand-off s1', 'step s1']);
  });

  it('loses only spans when the receiver is down: steps run and hand on as usual', async () => {
    // Nothing listens on the discard port: every export is refused.
    await sys.startDriver(['tr-delta'], { CONVEYOR_OTEL_ENDPOINT: 'http://127.0.0.1:9', CONVEYOR_OTEL_SERVICE_NAME: 'driver-d' });
    const id = await sys.run([{ driver: 'tr-delta', retries: 1, config: { failTimes: 1 } }, { driver: 'tr-delta' }]);
    const done = await sys.waitForRun(id);
    expect(done.status).toBe('succeeded');
    expect(done.steps.map((s) => s.attempts)).toEqual([2, 1]);
  });

  it('roots a webhook run at its POST /hooks/:trigger, itself a child of the traceparent the forge sends', async () => {
    const secret = `hook-${randomBytes(8).toString('hex')}`;
    await sys.api.ok('PUT', '/secrets/trace-hook', { value: secret });
    await sys.api.ok('POST', '/triggers', { name: 'traced', source: 'github', secret: 'trace-hook', resource: 'thing', pipeline: await sys.pipeline([{ driver: 'tr-alpha' }]), events: ['push'] });
    const payload = JSON.parse(readFileSync(join(__dirname, '..', '..', 'libs', 'triggers', 'fixtures', 'github-push.json'), 'utf8'));
    const body = JSON.stringify(payload);
    const caller = { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex') };
    const res = await sys.api.request<{ runid: string }>('POST', '/hooks/traced', body, {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
      traceparent: `00-${caller.traceId}-${caller.spanId}-01`,
    });
    expect(res.status).toBe(202);
    expect((await sys.waitForRun(res.body.runid)).status).toBe('succeeded');

    const run = await runSpan(res.body.runid);
    expect(run.traceId).toBe(caller.traceId);
    const spans = await traceOf(caller.traceId, (all) => all.some((s) => s.kind === PRODUCER) && all.some((s) => s.kind === SERVER));
    const hook = spans.find((s) => s.kind === SERVER)!;
    expect(hook).toMatchObject({ name: 'POST /hooks/:trigger', parentSpanId: caller.spanId, spanId: run.parentSpanId });
    expect(hook.attributes).toMatchObject({ 'http.response.status_code': 202, 'url.path': '/hooks/traced' });
    expect(spans.find((s) => s.kind === CONSUMER)).toMatchObject({ name: 'step s1', parentSpanId: run.spanId, service: 'driver-a' });
  });

  it('roots a scheduled run at its schedule tick', async () => {
    const pipeline = await sys.pipeline([{ driver: 'tr-beta' }]);
    await sys.api.ok('POST', '/schedules', { name: 'traced-tick', cron: '* * * * * *', resource: 'thing', pipeline, spec: {} });
    const runid = await waitFor('the first tick to start a run', async () => (await sys.api.ok<{ last: { runid?: string } | null }>('GET', '/schedules/traced-tick')).last?.runid, 10_000, 100);
    expect((await sys.api.request('DELETE', '/schedules/traced-tick')).status).toBe(204);
    expect((await sys.waitForRun(runid)).status).toBe('succeeded');

    const run = await runSpan(runid);
    const spans = await traceOf(run.traceId, (all) => all.some((s) => s.kind === PRODUCER) && all.some((s) => s.name === 'schedule tick'));
    const tick = spans.find((s) => s.name === 'schedule tick')!;
    expect(tick).toMatchObject({ parentSpanId: undefined, spanId: run.parentSpanId, service: 'gateway' });
    expect(tick.attributes).toMatchObject({ 'conveyor.schedule': 'traced-tick', 'conveyor.run.id': runid });
    expect(spans.find((s) => s.kind === CONSUMER)).toMatchObject({ name: 'step s1', parentSpanId: run.spanId, service: 'driver-b' });
  });
});

