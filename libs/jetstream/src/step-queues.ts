import { isName } from '@conveyor/contracts';
import type { JetStreamContext } from './connection';

/** Step work of one driver (on one build machine, for pinned work), as the steps stream holds it. */
export interface StepQueue {
  driver: string;
  /** Set for work pinned to a machine (`<prefix>.steps.<driver>.<machine>`). */
  machine?: string;
  /** Not delivered yet. */
  pending: number;
  /** Delivered to an agent and not acked yet. */
  ackPending: number;
  /** The first stream sequence that may still be waiting (after the consumer's ack floor). */
  fromSeq: number;
}

/**
 * The step work waiting for each driver: per drivers' durable consumer (`<driver>` or
 * `<driver>_<machine>`) what it has not delivered or not had acked, and everything on a step
 * subject no such consumer reads (no agent of that driver ever started). Other consumers on
 * the stream (an operator's, an ordered one that reads without consuming) are not queues.
 */
export async function stepQueues(ctx: JetStreamContext): Promise<StepQueue[]> {
  const { jsm, subjects } = ctx;
  const base = subjects.allSteps.slice(0, -1);
  const parse = (rest: string, sep: string): { driver: string; machine?: string } | undefined => {
    const [driver, machine, extra] = rest.split(sep);
    return isName(driver) && (machine === undefined || isName(machine)) && extra === undefined ? { driver, machine } : undefined;
  };
  const out: StepQueue[] = [];
  const read = new Set<string>();
  for await (const ci of jsm.consumers.list(subjects.stepsStream)) {
    const owner = ci.config.durable_name ? parse(ci.name, '_') : undefined;
    if (!owner || ci.config.filter_subject !== subjects.step(owner.driver, owner.machine)) continue;
    read.add(ci.config.filter_subject);
    out.push({ ...owner, pending: ci.num_pending, ackPending: ci.num_ack_pending, fromSeq: ci.ack_floor.stream_seq + 1 });
  }
  const info = await jsm.streams.info(subjects.stepsStream, { subjects_filter: subjects.allSteps });
  for (const [subject, count] of Object.entries(info.state.subjects ?? {})) {
    const owner = subject.startsWith(base) && !read.has(subject) ? parse(subject.slice(base.length), '.') : undefined;
    if (owner) out.push({ ...owner, pending: count, ackPending: 0, fromSeq: 1 });
  }
  return out;
}
