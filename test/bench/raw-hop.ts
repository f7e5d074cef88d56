import { spawn } from 'node:child_process';
import { connect } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { monotonicMs } from '../drivers/behaviours';

/**
 * The baseline of the hand-off: one JetStream hop as a hand-written nats.js program does it —
 * publish (await the pub ack) → a waiting pull receives it → ackAck — one message in flight
 * at a time, like one step after another. Timed from just before the publish to the receipt.
 *
 * `crossProcess`: the receiver is a process of its own (this file run as a script), as the
 * next driver of a pipeline is; times cross over on the system-wide monotonic clock.
 */
export async function rawHop(url: string, hops: number, crossProcess: boolean): Promise<number[]> {
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const name = crossProcess ? 'RAW_X' : 'RAW';
  await jsm.streams.add({ name, subjects: [`${name}.hop`], storage: StorageType.File, retention: RetentionPolicy.Limits });
  await jsm.consumers.add(name, { durable_name: 'hop', ack_policy: AckPolicy.Explicit, filter_subject: `${name}.hop` });
  const samples: number[] = [];
  let received: (() => void) | undefined;
  let stopReceiver: () => Promise<unknown>;
  if (crossProcess) {
    const sub = nc.subscribe(`${name}.sample`, { callback: (_e, m) => { samples.push(Number(m.string())); received?.(); } });
    await nc.flush();
    const child = spawn(process.execPath, [__filename, url, name, String(hops)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.once('exit', (code) => reject(new Error(`raw-hop receiver exited with ${code}`)));
    });
    stopReceiver = async () => { sub.unsubscribe(); if (child.exitCode === null) await new Promise((r) => child.once('exit', r)); };
  } else {
    const done = receive(js, name, hops, async (latency) => { samples.push(latency); received?.(); });
    stopReceiver = () => done;
  }
  for (let i = 0; i < hops; i++) {
    const got = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`hop ${i} not received in 5 s`)), 5_000);
      received = () => { clearTimeout(t); resolve(); };
    });
    await js.publish(`${name}.hop`, String(monotonicMs()));
    await got;
  }
  await stopReceiver();
  await jsm.streams.delete(name);
  await nc.close();
  return samples;
}

async function receive(js: ReturnType<typeof jetstream>, stream: string, hops: number, sample: (latencyMs: number) => Promise<void>): Promise<void> {
  const consumer = await js.consumers.get(stream, 'hop');
  for (let i = 0; i < hops; ) {
    const m = await consumer.next({ expires: 5_000 });
    if (!m) continue;
    const latency = monotonicMs() - Number(m.string());
    await m.ackAck();
    await sample(latency);
    i++;
  }
}

// Run as a script: the receiving side of the cross-process hop.
if (require.main === module) {
  const [url, stream, hops] = process.argv.slice(2);
  void (async () => {
    const nc = await connect({ servers: url });
    const js = jetstream(nc);
    const consumer = await js.consumers.get(stream, 'hop');
    await consumer.info();
    process.stdout.write('ready\n');
    await receive(js, stream, Number(hops), async (latency) => nc.publish(`${stream}.sample`, String(latency)));
    await nc.drain();
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
