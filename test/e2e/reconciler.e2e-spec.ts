import { headers as natsHeaders } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import type { Pipeline, Resource } from '@conveyor/contracts';
import { loadConfig } from '@conveyor/config';
import { connectJetStream, type JetStreamContext } from '@conveyor/jetstream';
import { RunLog } from '@conveyor/run-log';
import { firstStepMessage, newRun } from '@conveyor/runs';
import { Headers, newRunId } from '@conveyor/contracts';
import { NatsServer } from '../support/nats-server';
import { waitFor } from '../support/processes';
import { TestSystem } from '../support/system';

jest.setTimeout(120_000);

/**
 * Nothing stays unended without work in flight (the gateway's RunReconciler, every second
 * here). Each case causes its fault: work taken off its queue by a foreign client, a damaged
 * record dead-lettered, a driver's consumer deleted, the gateway gone between a run's start and
 * its record.
 */
describe('runs without work in flight', () => {
  let sys: TestSystem;
  let ctx: JetStreamContext;

  beforeAll(async () => {
    sys = await TestSystem.on(await NatsServer.start(), {}, { CONVEYOR_RECONCILE_INTERVAL: '1s', CONVEYOR_DRIVER_GRACE: '8s' });
    await sys.startDriver(['alpha', 'cleanup']);
    ctx = await connectJetStream(loadConfig({ CONVEYOR_NATS_URL: sys.nats.url }));
  });
  afterAll(async () => {
    await ctx?.nc.close();
    await sys?.stop();
  });

  const starts = (id: string, step: string) => sys.journalOf(id).filter((j) => j.step === step && j.what === 'start');

  it('a run whose work a foreign client acked without handing it on is failed with the reason, and its cleanup runs', async () => {
    const id = await sys.run([{ driver: 'nobody' }, { driver: 'cleanup', always: true }]);
    // A client that is not an agent (a script, an old tool) takes the work off the queue and acks it.
    const queue = await ctx.js.consumers.get('CONVEYOR_RUNS', 'nobody');
    const m = await queue.next({ expires: 5_000 });
    expect(m?.subject).toBe(`conveyor.steps.${id}.s1.nobody.any`);
    await m!.ackAck();
    const run = await sys.waitForRun(id, undefined, 30_000);
    expect(run.status).toBe('failed');
    expect(run.steps.map((s) => s.status)).toEqual(['failed', 'succeeded']);
    expect(run.steps[0].message).toMatch(/no work in flight: its step "s1" left the queue of driver "nobody" without an outcome/);
    expect(run.message).toMatch(/left the queue of driver "nobody"/);
    expect(starts(id, 's2')).toHaveLength(1);
  });

  it('a run whose current work was dead-lettered (a record no agent can read) is failed, and its cleanup runs', async () => {
    const id = await sys.run([{ driver: 'gamma' }, { driver: 'cleanup', always: true }]);
    const runLog = new RunLog(ctx);
    const head = await waitFor('the run\'s first record', () => runLog.head(id));
    // A writer of another version replaces the step's work with a record this one cannot read,
    // fenced like any writer's (and, to this version's wire check, a violation).
    sys.nats.wire?.expectViolations(new RegExp(`^conveyor\\.steps\\.${id}\\.s1\\.gamma\\.any$`));
    const h = natsHeaders();
    h.set(Headers.Protocol, '99.0');
    h.set('Nats-Expected-Last-Subject-Sequence', String(head.seq));
    h.set('Nats-Expected-Last-Subject-Sequence-Subject', `conveyor.steps.${id}.>`);
    await ctx.js.publish(`conveyor.steps.${id}.s1.gamma.any`, JSON.stringify({ v: 99, runId: id, note: 'from a newer writer' }), { headers: h });
    const gamma = await sys.startDriver(['gamma']);
    const run = await sys.waitForRun(id, undefined, 30_000);
    expect(run.status).toBe('failed');
    expect(run.steps.map((s) => s.status)).toEqual(['failed', 'succeeded']);
    expect(run.steps[0].message).toMatch(/left the queue of driver "gamma" without an outcome \(message \d+ of CONVEYOR_RUNS was dead-lettered/);
    // (The superseded first work may still run as a fresh delivery; its hand-off is refused.)
    expect(starts(id, 's2')).toHaveLength(1);
    // The dead letter says why.
    const dlq = await (await ctx.js.consumers.get('CONVEYOR_DLQ')).next({ expires: 5_000 });
    expect(dlq?.json<{ subject: string; reason: string }>()).toMatchObject({ subject: `conveyor.steps.${id}.s1.gamma.any` });
    await gamma.stop('SIGKILL');
  });

  it('work whose driver\'s consumer was deleted is counted again, so the run fails when no agent of it comes', async () => {
    const id = await sys.run([{ driver: 'delta' }, { driver: 'cleanup', always: true }]);
    // An operator deletes the driver's consumer: the work now waits on a subject nothing reads.
    await waitFor('the run to be queued', async () => ((await sys.api.run(id)).status === 'queued' ? true : undefined));
    await ctx.jsm.consumers.delete('CONVEYOR_RUNS', 'delta');
    const run = await sys.waitForRun(id, undefined, 40_000);
    expect(run.status).toBe('failed');
    expect(run.steps[0].message).toMatch(/no agent of driver "delta" has been alive for 8s/);
    expect(run.steps[1].status).toBe('succeeded');
    expect((await ctx.jsm.consumers.info('CONVEYOR_RUNS', 'delta')).config.filter_subject).toBe('conveyor.steps.*.*.delta.any');
  });

  it('never fails a step an agent is running, even when an operator remade its queue so that its ack floor is past the work', async () => {
    const slow = await sys.startDriver(['epsilon']);
    const id = await sys.run([{ driver: 'epsilon', config: { sleepMs: 6_000 } }, { driver: 'cleanup', always: true }]);
    await waitFor('the step to start', () => starts(id, 's1').find((j) => j.agent === slow.agentId), 20_000);
    // An operator remakes the queue to deliver only new work: its ack floor is the stream's end.
    await ctx.jsm.consumers.delete('CONVEYOR_RUNS', 'epsilon');
    await ctx.jsm.consumers.add('CONVEYOR_RUNS', { durable_name: 'epsilon', filter_subject: 'conveyor.steps.*.*.epsilon.any', ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New });
    const run = await sys.waitForRun(id, undefined, 40_000);
    expect(run.status).toBe('succeeded');
    expect(run.steps.map((s) => s.status)).toEqual(['succeeded', 'succeeded']);
    await slow.stop('SIGKILL');
  });

  it('a run started by a gateway that stopped before writing its record gets its record, and runs', async () => {
    const name = await sys.pipeline([{ driver: 'alpha' }]);
    const pipeline = await sys.api.ok<Pipeline>('GET', `/pipelines/${name}`);
    await sys.api.ok('POST', '/resources', { name: 'no-record', resource: 'thing', spec: {} });
    const resource = await sys.api.ok<Resource>('GET', '/resources/thing/no-record');
    const id = newRunId();
    await sys.restartGateway(async () => {
      // What the gateway's RunStarter writes first; it stopped before the run record it writes next.
      const written = await new RunLog(ctx).start(firstStepMessage(newRun(id, pipeline, resource), resource));
      expect(written.stored).toBe(true);
    });
    const run = await sys.waitForRun(id, undefined, 30_000);
    expect(run).toMatchObject({ status: 'succeeded', pipeline: { name }, resource: { type: 'thing', name: 'no-record', version: 1 } });
    expect(starts(id, 's1')).toHaveLength(1);
  });
});
