import { JetStreamApiError, type JetStreamManager, type StoredMsg } from '@nats-io/jetstream';
import { isNotFound } from './provision';

/** The server's answer to a publish whose expected last (subject) sequence did not hold. */
const WRONG_LAST_SEQUENCE = 10071;

/** A publish was refused because its expected last sequence (of the stream or subject) did not hold. */
export function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === WRONG_LAST_SEQUENCE;
}

/**
 * A stream's messages from sequence `upper` down to `first`, newest first, in batches of direct
 * gets of `batch` sequences each (the stream needs `allow_direct`): never the whole stream, and a
 * reader that stops after the first batch read only that. Sequences deleted from the stream are
 * skipped (a batch then holds fewer messages); a batch that finds none at all is not yielded.
 */
export async function* readBackwards(jsm: JetStreamManager, stream: string, range: { upper: number; first: number; batch: number }): AsyncGenerator<StoredMsg[]> {
  let upper = range.upper;
  while (upper >= range.first && upper > 0) {
    const start = Math.max(range.first, upper - range.batch + 1);
    const found: StoredMsg[] = [];
    try {
      for await (const m of await jsm.direct.getBatch(stream, { seq: start, batch: upper - start + 1 })) {
        // Past a deleted message the batch runs on into messages already read (or stored since).
        if (m.seq > upper) break;
        found.push(m);
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    upper = start - 1;
    if (found.length > 0) yield found.reverse();
  }
}
