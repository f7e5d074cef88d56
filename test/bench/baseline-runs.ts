import type { ChildProcess } from 'node:child_process';
import { connect, headers } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, StorageType, type JsMsg } from '@nats-io/jetstream';
import { NatsServer } from '../support/nats-server';
import { CpuMeter } from './cpu';
import { MessageMeter } from './messages';
import { nextLine, startScript, type ScriptProcess } from './script-process';

/**
 * The baseline of the CPU a run costs: a hand-written program on the raw `@nats-io/jetstream`
 * client (no Conveyor code) that does the least JetStream work a no-op 4-step run needs, laid
 * out as Conveyor is deployed: one process per driver, and a starter in the gateway's place.
 *
 *   starter   per run, one fenced publish of the first step's work (Expected-Last-Subject-Sequence
 *             0 over the run's subjects, with a message id), as the gateway starts a run
 *   driver i  pulls its work from its durable consumer (explicit acks, 16 in flight like an agent
 *             of concurrency 16); per message, one fenced publish of what follows (the next
 *             step's work, or the run's end after step 4: fenced on the work message's sequence,
 *             with a message id), then an ack (not waited for), as a driver's hand-off is written and acked
 *
 * So 5 fenced publishes, 4 pulls and 4 acks per run, each record carrying the payload the
 * starter gave it. Nothing folds the runs into records, claims, heartbeats or logs: that is
 * what Conveyor does on top of it. It has a nats-server of its own, so only its own work is
 * counted there.
 */
export const STEPS = 4;
const STREAM = 'BASE_RUNS';
const IN_FLIGHT = 16;
const LANES = 16;

const workSubject = (run: string, step: number) => `base.steps.${run}.s${step}.d${step}.any`;

function fence(run: string, seq: number) {
  const h = headers();
  h.set('Nats-Expected-Last-Subject-Sequence', String(seq));
  h.set('Nats-Expected-Last-Subject-Sequence-Subject', `base.steps.${run}.>`);
  return h;
}

export interface BaselineResult {
  seconds: number;
  cpu: { perProcess: Array<{ name: string; seconds: number }>; total: number };
  /** NATS messages (in + out, as the server counts them) of the starter and of all drivers. */
  messages: { perProcess: Map<string, number>; total: number };
  /** CPU of the same processes idle for `idleSeconds` after the runs, when asked. */
  idle?: { perProcess: Array<{ name: string; seconds: number }>; total: number };
}

/**
 * How the baseline's drivers are laid out: `copies` of each (16 in flight per process), one
 * process per driver (as the CPU part deploys Conveyor's agents) or, `allSteps`, each process
 * serving all four (as the throughput part's agents do).
 */
export interface BaselineLayout {
  copies: number;
  allSteps: boolean;
}

/**
 * `runs` runs (after `warmUp` of them, not measured) with records of `payloadBytes`, started at
 * `ratePerSecond` (0: as fast as the starter's clients can); CPU of
 * the starter, each driver and the baseline's nats-server from the first publish to the last end;
 * then, when `idleSeconds`, of the same processes idle.
 */
export async function baselineRuns(
  runs: number,
  payloadBytes: number,
  warmUp: number,
  { ratePerSecond = 0, layout = { copies: 1, allSteps: false }, idleSeconds = 0 }: { ratePerSecond?: number; layout?: BaselineLayout; idleSeconds?: number } = {},
): Promise<BaselineResult> {
  const nats = await NatsServer.start({ monitor: true });
  const children: ChildProcess[] = [];
  try {
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: STREAM, subjects: ['base.steps.>'], storage: StorageType.File, duplicate_window: 120e9 });
    for (let i = 1; i <= STEPS; i++) {
      await jsm.consumers.add(STREAM, { durable_name: `d${i}`, filter_subject: workSubject('*', i), ack_policy: AckPolicy.Explicit, max_ack_pending: IN_FLIGHT * layout.copies, ack_wait: 30e9 });
    }
    await nc.close();
    const steps = Array.from({ length: STEPS }, (_, i) => String(i + 1));
    const drivers: ScriptProcess[] = [];
    for (let copy = 0; copy < layout.copies; copy++) {
      for (const served of layout.allSteps ? [steps.join(',')] : steps) drivers.push(await startScript(__filename, ['driver', nats.url, served], 'baseline'));
    }
    const starter = await startScript(__filename, ['starter', nats.url, String(runs), String(payloadBytes), String(warmUp), String(ratePerSecond)], 'baseline');
    children.push(...drivers.map((d) => d.child), starter.child);
    const procs = [
      { name: 'starter', pid: starter.child.pid! },
      ...drivers.map((d, i) => ({ name: `driver ${i + 1}`, pid: d.child.pid! })),
      { name: 'nats-server', pid: nats.pid! },
    ];
    const meter = new CpuMeter(procs).start();
    const messageMeter = await new MessageMeter(nats, (name) => (name === 'starter' ? 'starter' : name === 'driver' ? 'drivers' : undefined)).start();
    starter.child.stdin!.write('go\n');
    const done = await nextLine(starter.lines, 'done', 600_000, 'baseline');
    const cpu = meter.stop();
    const messages = await messageMeter.stop();
    let idle: BaselineResult['idle'];
    if (idleSeconds > 0) {
      // As Conveyor's stack is idled (./cpu-phase): 2 s for the last acks, then the window.
      await new Promise((r) => setTimeout(r, 2_000));
      const idleMeter = new CpuMeter(procs).start();
      await new Promise((r) => setTimeout(r, idleSeconds * 1000));
      idle = idleMeter.stop();
    }
    return { seconds: Number(done.split(' ')[1]) / 1000, cpu, messages, idle };
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await nats.dispose();
  }
}

/** One driver process serving `steps`, each from its durable consumer. */
async function driver(url: string, steps: number[]): Promise<void> {
  const nc = await connect({ servers: url, name: 'driver' });
  const js = jetstream(nc);
  const served = await Promise.all(steps.map(async (step) => ({ step, messages: await (await js.consumers.get(STREAM, `d${step}`)).consume({ max_messages: IN_FLIGHT }) })));
  process.stdout.write('ready\n');
  await Promise.all(served.map(({ step, messages }) => serve(js, step, messages)));
}

async function serve(js: ReturnType<typeof jetstream>, step: number, messages: AsyncIterable<JsMsg>): Promise<void> {
  const handOff = async (m: JsMsg) => {
    const run = m.subject.split('.')[2];
    const next = step < STEPS ? workSubject(run, step + 1) : `base.steps.${run}.end`;
    await js.publish(next, m.data, { headers: fence(run, m.seq), msgID: `${run}.${step}` });
    m.ack();
  };
  // Handled side by side, as an agent does: the consumer's max_ack_pending bounds them.
  for await (const m of messages) {
    handOff(m).catch((err) => {
      console.error(`baseline driver ${step}:`, err);
      process.exit(1);
    });
  }
}

async function starter(url: string, runs: number, payloadBytes: number, warmUp: number, ratePerSecond: number): Promise<void> {
  const nc = await connect({ servers: url, name: 'starter' });
  const js = jetstream(nc);
  // Ends counted per wave (its runs' first letter); a plain subscription sees each end as it is
  // stored, with no JetStream work of its own.
  const ended = { w: 0, r: 0 };
  let wake: (() => void) | undefined;
  nc.subscribe('base.steps.*.end', { callback: (_e, m) => { ended[m.subject.split('.')[2][0] as 'w' | 'r']++; wake?.(); } });
  await nc.flush();
  const payload = new Uint8Array(payloadBytes).fill(120);
  const wave = async (prefix: 'w' | 'r', n: number, ratePerSecond = 0) => {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: LANES }, async (_, lane) => {
      for (let i = lane; i < n; i += LANES) {
        // Paced as Stack.burst paces Conveyor's runs.
        const wait = ratePerSecond > 0 ? t0 + (i * 1000) / ratePerSecond - performance.now() : 0;
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const run = `${prefix}${i}`;
        await js.publish(workSubject(run, 1), payload, { headers: fence(run, 0), msgID: `${run}.start` });
      }
    }));
    await allEnded(() => ended[prefix] >= n, (w) => (wake = w));
  };
  await wave('w', warmUp);
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  const t0 = performance.now();
  await wave('r', runs, ratePerSecond);
  process.stdout.write(`done ${performance.now() - t0}\n`);
  // The connection stays open until the bench ends this process: its messages are counted then.
}

/** Waits (bounded: 5 minutes) until `all()`, woken by each end. */
async function allEnded(all: () => boolean, onWake: (wake: () => void) => void): Promise<void> {
  const deadline = Date.now() + 300_000;
  while (!all()) {
    if (Date.now() > deadline) throw new Error('baseline: runs did not all end in 5 minutes');
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 1_000);
      onWake(() => { clearTimeout(t); resolve(); });
    });
  }
}

// Run as a script: one process of the baseline (see ./script-process).
if (require.main === module) {
  const [role, url, a, b, c, d] = process.argv.slice(2);
  (role === 'driver' ? driver(url, a.split(',').map(Number)) : starter(url, Number(a), Number(b), Number(c), Number(d ?? 0))).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
