import { readFileSync } from 'node:fs';
import { connect, type NatsConnection, type Msg } from '@nats-io/transport-node';
import { connectBatched } from '@conveyor/jetstream';
import { NatsServer } from '../support/nats-server';

/** write(2) calls made so far by this process's main thread, where the sockets are written. */
function mainThreadWrites(): number {
  const io = readFileSync(`/proc/self/task/${process.pid}/io`, 'utf8');
  return Number(/^syscw: (\d+)$/m.exec(io)![1]);
}

/** `n` publishes, each in a microtask of its own (as work that awaits between them makes them); resolves after the tick. */
async function publishAcrossMicrotasks(nc: NatsConnection, subject: string, n: number): Promise<number> {
  const before = mainThreadWrites();
  await new Promise<void>((resolve) => {
    setImmediate(async () => {
      for (let i = 0; i < n; i++) {
        await Promise.resolve();
        nc.publish(subject, String(i));
      }
      setImmediate(resolve);
    });
  });
  return mainThreadWrites() - before;
}

/** Messages of `subject` until `n` came (bounded in time). */
function receive(nc: NatsConnection, subject: string, n: number): Promise<string[]> {
  const got: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${got.length} of ${n} messages came`)), 10_000);
    nc.subscribe(subject, {
      max: n,
      callback: (_e, m: Msg) => {
        got.push(m.string());
        if (got.length === n) {
          clearTimeout(timer);
          resolve(got);
        }
      },
    });
  });
}

/** connectBatched: a tick's commands reach the server in one write, in order, across reconnects. */
describe('batched socket writes', () => {
  let nats: NatsServer;
  const conns: NatsConnection[] = [];

  beforeAll(async () => {
    nats = await NatsServer.start({ wire: false });
  });
  afterAll(async () => {
    await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
    await nats?.dispose();
  });

  const open = async (batched: boolean): Promise<NatsConnection> => {
    const nc = batched ? await connectBatched({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 }) : await connect({ servers: nats.url });
    conns.push(nc);
    await nc.flush();
    return nc;
  };

  it('writes 50 publishes made in 50 microtasks of one tick with one write, and they arrive in order', async () => {
    const reader = await open(false);
    const nc = await open(true);
    const arriving = receive(reader, 'batched.a', 50);
    await reader.flush();
    const writes = await publishAcrossMicrotasks(nc, 'batched.a', 50);
    // One write for the publishes; a ping of another connection may share the window.
    expect(writes).toBeLessThanOrEqual(3);
    expect(await arriving).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
  });

  it('is what makes the difference: the library alone writes each of those publishes by itself', async () => {
    const nc = await open(false);
    expect(await publishAcrossMicrotasks(nc, 'batched.b', 50)).toBeGreaterThanOrEqual(40);
  });

  it('sends what a tick wrote before a close in the same tick (close destroys the socket at once)', async () => {
    const reader = await open(false);
    const arriving = receive(reader, 'batched.d', 2);
    await reader.flush();
    const nc = await connectBatched({ servers: nats.url });
    await nc.flush();
    await new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        nc.publish('batched.d', 'first');
        void Promise.resolve()
          .then(() => nc.publish('batched.d', 'last'))
          .then(() => nc.close())
          .then(resolve, reject);
      });
    });
    expect(await arriving).toEqual(['first', 'last']);
  });

  it('still batches, and delivers, after the server restarted and the connection came back', async () => {
    // The connections of the cases before would reconnect too, and write while this one is counted.
    await Promise.all(conns.splice(0).map((c) => c.close()));
    const nc = await open(true);
    const reconnected = (async () => {
      for await (const s of nc.status()) if (s.type === 'reconnect') return;
    })();
    await nats.restart();
    await reconnected;
    const reader = await open(false);
    const arriving = receive(reader, 'batched.c', 50);
    await reader.flush();
    // One write for the publishes; the reader's subscription or a ping of a connection may share the window.
    expect(await publishAcrossMicrotasks(nc, 'batched.c', 50)).toBeLessThanOrEqual(3);
    expect(await arriving).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
  });
});
