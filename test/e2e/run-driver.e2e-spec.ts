import { runDriver, runStep, type RunningDriver, type StepContext } from '@conveyor/driver-sdk';
import { NatsServer } from '../support/nats-server';

jest.setTimeout(60_000);

/**
 * runDriver (a driver from a plain function) in this process against a real nats-server, with
 * runStep starting one-step runs the way the gateway does (the run's first record).
 */
describe('runDriver and runStep', () => {
  let nats: NatsServer;
  const running: RunningDriver[] = [];
  let n = 0;
  // Fast settings, as TestSystem gives its test drivers; one agent id per driver (same process).
  const env = () => ({
    CONVEYOR_NATS_URL: nats.url,
    CONVEYOR_AGENT_ID: `fn-agent-${++n}`,
    CONVEYOR_ACK_WAIT: '3s',
    CONVEYOR_RETRY_BACKOFF: '100ms',
    CONVEYOR_HEARTBEAT_INTERVAL: '1s',
    CONVEYOR_DRAIN_TIMEOUT: '10s',
    CONVEYOR_LOG_LEVEL: 'warn',
  });
  const start = async (name: string, handle: (ctx: StepContext) => ReturnType<Parameters<typeof runDriver>[0]['handle']>) => {
    const d = await runDriver({ name, handle, env: env(), exitOnSignals: false });
    running.push(d);
    return d;
  };

  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterAll(async () => {
    await Promise.all(running.map((d) => d.stop()));
    await nats?.dispose();
  });

  it('runs a step: the handler gets the config and spec, its lines and data come back', async () => {
    const d = await start('greeter', async (ctx) => {
      ctx.log.info(`hello, ${String(ctx.config.who)} of ${String(ctx.resource.spec.team)}`);
      return { success: true, message: 'greeted', data: { who: ctx.config.who ?? null, attempt: ctx.attempt } };
    });
    const r = await runStep({ driver: 'greeter', config: { who: 'ada' }, spec: { team: 'core' }, env: { CONVEYOR_NATS_URL: nats.url }, waitMs: 15_000 });
    expect(r.status).toBe('succeeded');
    expect(r.step).toMatchObject({ stepId: 'step', driver: 'greeter', status: 'succeeded', message: 'greeted', data: { who: 'ada', attempt: 1 }, agent: d.agentId, attempt: 1 });
    expect(r.lines).toContain('hello, ada of core');
  });

  it('a thrown error fails the attempt with its message; retries run the handler again', async () => {
    let calls = 0;
    await start('flaky', async () => {
      calls++;
      throw new Error(`broken ${calls}`);
    });
    const r = await runStep({ driver: 'flaky', retries: 1, env: { CONVEYOR_NATS_URL: nats.url }, waitMs: 15_000 });
    expect(r.status).toBe('failed');
    expect(r.step).toMatchObject({ status: 'failed', message: 'broken 2', attempt: 2 });
    expect(calls).toBe(2);
  });

  it('stop() drains: the step in flight finishes before it resolves', async () => {
    let started!: () => void;
    const isStarted = new Promise<void>((resolve) => (started = resolve));
    const d = await start('slow', async (ctx) => {
      started();
      await new Promise((r) => setTimeout(r, 500));
      return { success: true, message: ctx.signal.aborted ? 'aborted' : 'finished' };
    });
    const result = runStep({ driver: 'slow', env: { CONVEYOR_NATS_URL: nats.url }, waitMs: 15_000 });
    await isStarted;
    await d.stop();
    const r = await result;
    expect(r.status).toBe('succeeded');
    expect(r.step?.message).toBe('finished');
  });

  it('runStep says which driver did not answer, within its wait', async () => {
    const t0 = Date.now();
    await expect(runStep({ driver: 'nobody-serves-this', env: { CONVEYOR_NATS_URL: nats.url }, waitMs: 1_000 })).rejects.toThrow(/did not end in time: is a driver "nobody-serves-this" running/);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});
