import { Controller, Module } from '@nestjs/common';
import { connect } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { loadConfig } from '@conveyor/config';
import { HandleStep, startDriver, type StepContext, type StepResult } from '@conveyor/driver-sdk';
import { createGateway } from '../../apps/gateway/src/bootstrap';
import { Api } from '../support/api';
import { NatsServer } from '../support/nats-server';
import { startTestDriver, waitFor, type AppProcess } from '../support/processes';
import { benchDockerPipeline } from './docker-pipeline';
import { summary, table } from './stats';

/**
 * `npm run bench`: the costs of Conveyor's delivery protocol against raw JetStream,
 * measured in the same run on the same machine. Prints a table; no pass/fail.
 */
const now = () => Number(process.hrtime.bigint()) / 1e6;
const HOPS = Number(process.env.BENCH_HOPS ?? 500);
const RUNS = Number(process.env.BENCH_RUNS ?? 300);
const THROUGHPUT_RUNS = Number(process.env.BENCH_THROUGHPUT_RUNS ?? 500);

/** Baseline: one JetStream hop as a hand-written nats.js program does it: publish (await ack) → pull → ack. */
async function rawHop(url: string): Promise<number[]> {
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  await jsm.streams.add({ name: 'RAW', subjects: ['raw.>'], storage: StorageType.File, retention: RetentionPolicy.Limits });
  await jsm.consumers.add('RAW', { durable_name: 'raw', ack_policy: AckPolicy.Explicit, filter_subject: 'raw.hop' });
  const consumer = await js.consumers.get('RAW', 'raw');
  const samples: number[] = [];
  const receiver = (async () => {
    for (let i = 0; i < HOPS + 20; i++) {
      const m = await consumer.next({ expires: 5000 });
      if (!m) continue;
      const sent = Number(m.string());
      if (i >= 20) samples.push(now() - sent);
      await m.ackAck();
    }
  })();
  for (let i = 0; i < HOPS + 20; i++) {
    const before = samples.length;
    await js.publish('raw.hop', String(now()));
    // One message in flight at a time, like one step after another.
    await waitFor('hop', () => (samples.length > before || i < 20 ? true : undefined), 5000, 0);
  }
  await receiver;
  await jsm.streams.delete('RAW');
  await nc.close();
  return samples;
}

/** In-process bench driver: records when each handler is entered and left. */
const marks = new Map<string, { triggered?: number; h1Start?: number; h1End?: number; h2Start?: number }>();
const mark = (runId: string) => {
  let m = marks.get(runId);
  if (!m) marks.set(runId, (m = {}));
  return m;
};

@Controller()
class BenchDrivers {
  @HandleStep('bench-first')
  async first(ctx: StepContext): Promise<StepResult> {
    mark(ctx.runId).h1Start = now();
    mark(ctx.runId).h1End = now();
    return { success: true };
  }

  @HandleStep('bench-second')
  async second(ctx: StepContext): Promise<StepResult> {
    mark(ctx.runId).h2Start = now();
    return { success: true };
  }
}

@Module({ controllers: [BenchDrivers] })
class BenchModule {}

async function throughput(api: Api, nats: NatsServer, copies: number): Promise<{ perSecond: number; correct: number }> {
  const procs: AppProcess[] = [];
  for (let i = 0; i < copies; i++) {
    procs.push(await startTestDriver(['t1', 't2', 't3', 't4'], { CONVEYOR_NATS_URL: nats.url, CONVEYOR_AGENT_ID: `tp-${copies}-${i}`, CONVEYOR_CONCURRENCY: '16' }));
  }
  const pipeline = `tp-${copies}`;
  await api.ok('POST', '/pipelines', { name: pipeline, resource: 'bench', steps: ['t1', 't2', 't3', 't4'].map((d, i) => ({ id: `s${i}`, name: d, driver: d })) });
  const ids: string[] = [];
  const start = now();
  const lanes = 16;
  await Promise.all(Array.from({ length: lanes }, async (_, lane) => {
    for (let i = lane; i < THROUGHPUT_RUNS; i += lanes) {
      ids.push((await api.ok<{ runid: string }>('POST', '/resources', { name: `tp${copies}-${i}`, resource: 'bench', pipeline, spec: {} })).runid);
    }
  }));
  const wanted = new Set(ids);
  const done = await waitFor('throughput runs', async () => {
    const runs = await api.ok<Array<{ id: string; status: string }>>('GET', `/runs?pipeline=${pipeline}&limit=${THROUGHPUT_RUNS}`);
    const finished = runs.filter((r) => wanted.has(r.id) && r.status !== 'queued' && r.status !== 'running');
    return finished.length === ids.length ? finished : undefined;
  }, 300_000, 100);
  const seconds = (now() - start) / 1000;
  await Promise.all(procs.map((p) => p.stop('SIGTERM')));
  return { perSecond: ids.length / seconds, correct: done.filter((r) => r.status === 'succeeded').length };
}

async function main(): Promise<void> {
  const nats = await NatsServer.start();
  const results: string[][] = [['measure', 'conveyor', 'baseline (same run)', 'ratio / target']];
  try {
    process.stdout.write(`raw JetStream hop x${HOPS} ... `);
    const raw = summary(await rawHop(nats.url));
    console.log('done');

    const config = loadConfig({ CONVEYOR_NATS_URL: nats.url, CONVEYOR_HTTP_PORT: '0' });
    const gateway = await createGateway(config, { logger: ['error'] });
    await gateway.listen(0, '127.0.0.1');
    const api = new Api((await gateway.getUrl()).replace('[::1]', '127.0.0.1'));
    const driver = await startDriver(BenchModule, { name: 'bench', env: { CONVEYOR_NATS_URL: nats.url, CONVEYOR_AGENT_ID: 'bench' } });
    await api.ok('POST', '/resource-definitions', { name: 'bench', schema: { type: 'object' } });
    await api.ok('POST', '/pipelines', {
      name: 'handoff',
      resource: 'bench',
      steps: [{ id: 'one', name: 'one', driver: 'bench-first' }, { id: 'two', name: 'two', driver: 'bench-second' }],
    });

    process.stdout.write(`hand-off and trigger x${RUNS} ... `);
    const handoffs: number[] = [];
    const triggers: number[] = [];
    for (let i = 0; i < RUNS + 20; i++) {
      const t0 = now();
      const { runid } = await api.ok<{ runid: string }>('POST', '/resources', { name: `h-${i}`, resource: 'bench', pipeline: 'handoff', spec: {} });
      const m = await waitFor('second step', () => (marks.get(runid)?.h2Start ? marks.get(runid) : undefined), 10_000, 0);
      if (i < 20) continue; // warm-up
      triggers.push(m.h1Start! - t0);
      handoffs.push(m.h2Start! - m.h1End!);
    }
    console.log('done');
    const handoff = summary(handoffs);
    const trigger = summary(triggers);
    results.push(
      ['hand-off median (ms)', handoff.median.toFixed(2), raw.median.toFixed(2), `${(handoff.median / raw.median).toFixed(2)}x (target <= 2x)`],
      ['hand-off p99 (ms)', handoff.p99.toFixed(2), raw.p99.toFixed(2), `${(handoff.p99 / raw.p99).toFixed(2)}x`],
      ['trigger median (ms)', trigger.median.toFixed(2), '-', `target < 10 ms`],
      ['trigger p99 (ms)', trigger.p99.toFixed(2), '-', '-'],
    );
    await driver.close();

    const tp: Record<number, { perSecond: number; correct: number }> = {};
    const copiesList = (process.env.BENCH_COPIES ?? '1,2,4').split(',').map(Number);
    for (const copies of copiesList) {
      process.stdout.write(`throughput: ${THROUGHPUT_RUNS} no-op 4-step runs, ${copies} cop${copies === 1 ? 'y' : 'ies'} of each driver ... `);
      tp[copies] = await throughput(api, nats, copies);
      console.log('done');
      results.push([
        `runs/s, ${copies} cop${copies === 1 ? 'y' : 'ies'} per driver`,
        tp[copies].perSecond.toFixed(1),
        copies === copiesList[0] ? '-' : tp[copiesList[0]].perSecond.toFixed(1),
        `${tp[copies].correct}/${THROUGHPUT_RUNS} succeeded (target >= 100/s)${copies === copiesList[0] ? '' : `, ${(tp[copies].perSecond / tp[copiesList[0]].perSecond).toFixed(2)}x of ${copiesList[0]}`}`,
      ]);
    }
    await gateway.close();
  } finally {
    await nats.dispose();
  }
  if (process.env.BENCH_DOCKER !== '0') {
    process.stdout.write('full 4-step pipeline on real Docker vs the same by hand ... ');
    results.push(...(await benchDockerPipeline()));
    console.log('done');
  }
  console.log(`\n${table(results)}\n`);
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
