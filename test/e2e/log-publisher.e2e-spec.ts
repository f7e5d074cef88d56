import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { LogPublisher } from '@conveyor/logs';
import { NatsServer } from '../support/nats-server';

/** LogPublisher: log lines as pipelined JetStream publishes, acknowledged through one subscription. */
describe('the log publisher', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    // Its own streams and subjects, not Conveyor's: no wire check.
    nats = await NatsServer.start({ wire: false });
    nc = await connect({ servers: nats.url });
    jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'LINES', subjects: ['lines.>'], max_msg_size: 1024 });
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.dispose();
  });

  const outcomes = (publisher: LogPublisher, subject: string, lines: string[]) =>
    Promise.all(lines.map((l) => new Promise<boolean>((resolve) => publisher.publish(subject, l, resolve))));

  it('stores 5,000 lines sent without waiting, in the order sent, and tells each one stored', async () => {
    const publisher = new LogPublisher(nc);
    const lines = Array.from({ length: 5_000 }, (_, i) => `line ${i + 1}`);
    expect((await outcomes(publisher, 'lines.a', lines)).every(Boolean)).toBe(true);
    publisher.close();
    const consumer = await jetstream(nc).consumers.get('LINES', { filter_subjects: 'lines.a' });
    const read: string[] = [];
    const messages = await consumer.fetch({ max_messages: 5_000, expires: 5_000 });
    for await (const m of messages) {
      read.push(m.string());
      if (read.length === 5_000) break;
    }
    expect(read).toEqual(lines);
  });

  it('tells a line lost when no stream takes its subject, when JetStream refuses it, and when no answer comes in time', async () => {
    const publisher = new LogPublisher(nc, 300);
    // No stream, no subscriber: the server answers "no responders".
    expect(await outcomes(publisher, 'nowhere.a', ['x'])).toEqual([false]);
    // Larger than the stream's max_msg_size: JetStream's error.
    expect(await outcomes(publisher, 'lines.b', ['y'.repeat(2_000), 'fits'])).toEqual([false, true]);
    // A subscriber that never answers: no acknowledgement, lost after the timeout (300 ms).
    const silent = nc.subscribe('silent.>');
    const started = Date.now();
    expect(await outcomes(publisher, 'silent.a', ['z'])).toEqual([false]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    silent.unsubscribe();
    publisher.close();
  });

  it('tells the lines still waiting lost when it is closed, and every line sent after', async () => {
    const publisher = new LogPublisher(nc, 60_000);
    const silent = nc.subscribe('silent.>');
    const waiting = outcomes(publisher, 'silent.b', ['a', 'b']);
    await nc.flush();
    publisher.close();
    expect(await waiting).toEqual([false, false]);
    expect(await outcomes(publisher, 'lines.c', ['late'])).toEqual([false]);
    silent.unsubscribe();
  });
});
