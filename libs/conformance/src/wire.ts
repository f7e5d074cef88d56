import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Subjects } from '@conveyor/contracts';

/**
 * What the driver under test sends, in the order it sent it: its publishes of run records
 * (`<prefix>.steps.>`) and its acks of step messages (`$JS.ACK.<stream>.<consumer>.…`, which
 * any subscriber can see). Both are read by one connection, and NATS keeps the order of one
 * publisher's messages to one subscriber, so "the hand-off was published before the ack" is
 * read off the wire, not guessed from timings.
 */
export class WireWatch {
  private n = 0;
  /** Position of the first publish seen on each subject. */
  private readonly published = new Map<string, number>();
  /** Position of each ack (`+ACK`), by the stream sequence of the message acked. */
  private readonly acked = new Map<number, number>();
  /** Stream sequences of messages terminated (`+TERM`), with the reason given. */
  private readonly terminated = new Map<number, string>();
  private readonly subs: Subscription[] = [];

  constructor(
    nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly driver: string,
  ) {
    // Callbacks run as messages are parsed, in arrival order.
    this.subs.push(nc.subscribe(subjects.allRunRecords, { callback: (_e, m) => void (this.published.has(m.subject) || this.published.set(m.subject, ++this.n)) }));
    this.subs.push(
      nc.subscribe('$JS.ACK.>', {
        callback: (_e, m) => {
          const seq = this.ackedSeq(m.subject);
          if (seq === undefined) return;
          const body = new TextDecoder().decode(m.data);
          if (body.startsWith('+ACK') && !this.acked.has(seq)) this.acked.set(seq, ++this.n);
          if (body.startsWith('+TERM')) this.terminated.set(seq, body.slice(5).trim());
        },
      }),
    );
  }

  /**
   * The stream sequence an ack subject names, when it is an ack of this driver's consumers:
   * `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.…`, or with `<domain>.<account hash>`
   * after `$JS.ACK` (newer servers).
   */
  private ackedSeq(subject: string): number | undefined {
    const t = subject.split('.');
    for (const at of [2, 4]) {
      const consumer = t[at + 1];
      if (t[at] === this.subjects.runsStream && consumer !== undefined && (consumer === this.driver || consumer.startsWith(`${this.driver}_`))) return Number(t[at + 3]);
    }
    return undefined;
  }

  /** Where the ack of stream message `seq` came relative to the first publish on `handOff`: undefined while either is unseen. */
  order(seq: number, handOff: string): { ack?: number; handOff?: number } {
    return { ack: this.acked.get(seq), handOff: this.published.get(handOff) };
  }

  termination(seq: number): string | undefined {
    return this.terminated.get(seq);
  }

  close(): void {
    for (const s of this.subs) s.unsubscribe();
  }
}
