import type { ConsumerMessages } from '@nats-io/jetstream';
import type { Subscription } from '@nats-io/transport-node';

/**
 * How long a pull request of an app's durable consumers waits at the server (an agent's pulls
 * wait until the next instant of a grid this far apart, see JetStreamServer). Long: an idle
 * consumer then costs one request every 30 s, not one every 5 s with its expiry notice and a
 * heartbeat (measured: a stack that ran nothing, 0.89–1.12% -> 0.70–0.75% of a core in all).
 */
export const PULL_EXPIRES_MS = 30_000;

/**
 * How often the server says it still holds a waiting pull. Two missed beats end the pull with an
 * error and it is made again, so a pull the server lost without the connection dropping (its
 * cluster node went away) is noticed within 10 s, however long it was to wait.
 */
export const PULL_HEARTBEAT_MS = 5_000;

/**
 * Ends a waiting pull at once without losing what the server sent for it meanwhile: its
 * subscription is drained (unsubscribed, then flushed), so a message already on its way still
 * reaches the pull's reader, which hands it back; stopping it would drop such a message, to be
 * delivered again only after its ack wait. The subscription is a public field of nats.js's
 * pull iterator, not of its ConsumerMessages type; without it the pull is stopped.
 */
export async function drainPull(messages: ConsumerMessages): Promise<void> {
  const sub = (messages as ConsumerMessages & { sub?: Subscription }).sub;
  if (sub && typeof sub.drain === 'function' && !sub.isClosed() && !sub.isDraining()) await sub.drain().catch(() => messages.stop());
  else messages.stop();
}
