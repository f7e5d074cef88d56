import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient } from '@nats-io/jetstream';
import { monotonicMs } from '../drivers/behaviours';

/**
 * How the baseline hop is set up:
 *   in-process     publisher and receiver share one process
 *   cross-process  the receiver is a process of its own, as the next driver of a pipeline is
 *   with-events    cross-process, and every hop also publishes three 1 KiB messages to another
 *                  stream that a third process consumes — what a hand-off that records its
 *                  events (started, succeeded, a log line) puts on the server and the machine
 */
export type HopMode = 'in-process' | 'cross-process' | 'with-events';

const EVENTS_PER_HOP = 3;

/**
 * The baseline of the hand-off: one JetStream hop as a hand-written nats.js program does it —
 * publish (await the pub ack) → a waiting pull receives it → ackAck — one message in flight
 * at a time, like one step after another. Timed from just before the publish to the receipt,
 * across processes on the system-wide monotonic clock. Streams and processes are its own.
 */
export async function rawHop(url: string, hops: number, mode: HopMode): Promise<number[]> {
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const hop = `RAW_${mode.replace('-', '_').toUpperCase()}`;
  const events = `${hop}_EVENTS`;
  for (const stream of mode === 'with-events' ? [hop, events] : [hop]) {
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: StorageType.File, retention: RetentionPolicy.Limits });
    await jsm.consumers.add(stream, { durable_name: 'hop', ack_policy: AckPolicy.Explicit });
  }
  const samples: number[] = [];
  let received: (() => void) | undefined;
  const record = (latency: number) => {
    samples.push(latency);
    received?.();
  };
  const children: ChildProcess[] = [];
  let inProcess: Promise<void> | undefined;
  if (mode === 'in-process') {
    inProcess = receive(js, hop, hops, async (latency) => record(latency));
  } else {
    nc.subscribe(`samples.${hop}`, { callback: (_e, m) => record(Number(m.string())) });
    await nc.flush();
    children.push(await startReceiver(url, hop, hops, true));
    if (mode === 'with-events') children.push(await startReceiver(url, events, hops * EVENTS_PER_HOP, false));
  }
  const payload = 'x'.repeat(1024);
  for (let i = 0; i < hops; i++) {
    const got = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`hop ${i} not received in 5 s`)), 5_000);
      received = () => { clearTimeout(t); resolve(); };
    });
    const sent = [js.publish(`${hop}.hop`, String(monotonicMs()))];
    if (mode === 'with-events') {
      for (let e = 0; e < EVENTS_PER_HOP; e++) sent.push(js.publish(`${events}.e${e}`, payload));
    }
    await Promise.all(sent);
    await got;
  }
  await inProcess;
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  for (const stream of mode === 'with-events' ? [hop, events] : [hop]) await jsm.streams.delete(stream);
  await nc.close();
  return samples;
}

async function startReceiver(url: string, stream: string, count: number, report: boolean): Promise<ChildProcess> {
  const child = spawn(process.execPath, [__filename, url, stream, String(count), report ? 'report' : 'quiet'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`raw-hop receiver of ${stream} exited with ${code}`)));
  });
  return child;
}

async function receive(js: JetStreamClient, stream: string, count: number, sample: (latencyMs: number) => Promise<void>): Promise<void> {
  const consumer = await js.consumers.get(stream, 'hop');
  for (let i = 0; i < count; ) {
    const m = await consumer.next({ expires: 5_000 });
    if (!m) continue;
    const latency = monotonicMs() - Number(m.string());
    await m.ackAck();
    await sample(latency);
    i++;
  }
}

// Run as a script: a receiving process of a cross-process hop (or of its events).
if (require.main === module) {
  const [url, stream, count, report] = process.argv.slice(2);
  void (async () => {
    const nc = await connect({ servers: url });
    const js = jetstream(nc);
    await (await js.consumers.get(stream, 'hop')).info();
    process.stdout.write('ready\n');
    await receive(js, stream, Number(count), async (latency) => {
      if (report === 'report') nc.publish(`samples.${stream}`, String(latency));
    });
    await nc.drain();
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
