import type { JsMsg } from '@nats-io/jetstream';

/** An in-progress ack; on a connection that is closing it is simply not sent. */
export function keepAlive(m: JsMsg): void {
  try {
    m.working();
  } catch {
    // Redelivery then decides; every write after it is fenced.
  }
}

/**
 * Keeps a message ours from delivery until it is acked or handed back: in-progress acks
 * every third of the ack wait, through the handler and the whole hand-off (a hand-off that
 * waits on a NATS failover must not let the message go to another agent meanwhile).
 */
export function holdMessage(m: JsMsg, ackWaitMs: number): () => void {
  const timer = setInterval(() => keepAlive(m), Math.max(250, Math.floor(ackWaitMs / 3)));
  return () => clearInterval(timer);
}

/**
 * Acks a message whose outcome is stored (its hand-off, or a judge's "only ack"), without waiting
 * for the server to confirm it: a lost ack only brings the message back an ack wait later, and
 * that delivery is judged from the run's log, finds the step ended and is only acked
 * (docs/protocol.md §8.4; test/e2e/delivery-lost-ack). Waiting cost a message and a round trip
 * per step, with the step's slot held meanwhile.
 */
export function ack(m: JsMsg): void {
  try {
    m.ack();
  } catch {
    // On a connection that is closing: redelivery decides, as for a lost ack.
  }
}
