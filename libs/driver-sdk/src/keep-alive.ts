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

/** Waits for the server to confirm the ack, so a lost ack cannot make a finished step run again. */
export async function ackAck(m: JsMsg): Promise<void> {
  try {
    await m.ackAck({ timeout: 5_000 });
  } catch {
    // Its hand-off is stored; a redelivery finds the run moved on and only acks.
  }
}
