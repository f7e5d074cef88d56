import { AckPolicy, DeliverPolicy, JetStreamApiError, type ConsumerConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { JetStreamContext } from './connection';

/** Step work of one driver (on one build machine, for pinned work), as its durable consumer holds it. */
export interface StepQueue {
  driver: string;
  /** Set for work pinned to a machine. */
  machine?: string;
  /** Not delivered yet. */
  pending: number;
  /** Delivered to an agent and not acked yet. */
  ackPending: number;
  /** The first stream sequence that may still be waiting (after the consumer's ack floor). */
  fromSeq: number;
}

/** The durable consumer that the agents of a driver (of one machine, with `machine`) share. */
export function workConsumerConfig(ctx: JetStreamContext, driver: string, machine?: string): Partial<ConsumerConfig> & { durable_name: string } {
  const { subjects, config } = ctx;
  return {
    durable_name: subjects.consumer(driver, machine),
    filter_subject: subjects.workFor(driver, machine),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(config.steps.ackWaitMs),
    // Attempts are counted by the SDK from the run's log, not by deliveries.
    max_deliver: -1,
    max_ack_pending: 10_000,
    // A machine that is gone for good leaves no consumer behind: the server removes one that no
    // agent pulled from for this long (its agents pull every few seconds while alive). Work
    // pinned to it was given up long before (CONVEYOR_MACHINE_GRACE).
    ...(machine ? { inactive_threshold: nanos(config.machineConsumerTtlMs) } : {}),
  };
}

/**
 * Makes sure the durable consumer of a driver's work exists. Whoever publishes work for a
 * driver calls it beside the write (once a minute per process and driver), and the gateway's
 * reconciler for work it finds on a subject no consumer reads: so what waits is always counted
 * by a consumer (see `stepQueues`), even for a driver no agent ever served (a misspelt name).
 * A consumer made after the work was stored still delivers it (deliver policy all).
 */
export async function ensureWorkConsumer(ctx: JetStreamContext, driver: string, machine?: string, update = false): Promise<void> {
  const cfg = workConsumerConfig(ctx, driver, machine);
  try {
    await ctx.jsm.consumers.add(ctx.subjects.runsStream, cfg);
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || !/already (exists|in use)/i.test(err.message)) throw err;
    // Agents bring their own ack wait; a publisher leaves an existing consumer as it is.
    if (update) await ctx.jsm.consumers.update(ctx.subjects.runsStream, cfg.durable_name, { ack_wait: cfg.ack_wait, max_ack_pending: cfg.max_ack_pending, inactive_threshold: cfg.inactive_threshold });
  }
}

/**
 * The step work waiting for each driver: per drivers' durable consumer (`<driver>` or
 * `<driver>_<machine>`) what it has not delivered or not had acked. Other consumers on the
 * stream (an operator's, the gateway's projector, an ordered one that reads without
 * consuming) are not queues.
 */
export async function stepQueues(ctx: JetStreamContext): Promise<StepQueue[]> {
  const { jsm, subjects } = ctx;
  const out: StepQueue[] = [];
  for await (const ci of jsm.consumers.list(subjects.runsStream)) {
    const owner = ci.config.durable_name ? subjects.parseConsumer(ci.name) : undefined;
    if (!owner || ci.config.filter_subject !== subjects.workFor(owner.driver, owner.machine)) continue;
    out.push({ ...owner, pending: ci.num_pending, ackPending: ci.num_ack_pending, fromSeq: ci.ack_floor.stream_seq + 1 });
  }
  return out;
}
