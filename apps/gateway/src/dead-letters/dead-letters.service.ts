import { Inject, Injectable } from '@nestjs/common';
import type { StoredMsg } from '@nats-io/jetstream';
import type { DeadLetter } from '@conveyor/contracts';
import { JETSTREAM, isNotFound, readBackwards, type JetStreamContext } from '@conveyor/jetstream';

/** A dead letter as the API shows it: the payload as its size and a readable start. */
export interface DeadLetterView extends Omit<DeadLetter, 'payload' | 'at'> {
  /** Its sequence in the dead-letter stream. */
  seq: number;
  /** When the stream stored it (the server's clock). */
  at: string;
  /** Bytes of the payload kept (a dead letter keeps the first 64 KiB). */
  payloadBytes: number;
  /** The payload's first PREVIEW_BYTES as UTF-8, invalid bytes replaced. */
  preview: string;
}

const PREVIEW_BYTES = 512;
/** Batches of older letters read at most when some of the newest were deleted from the stream. */
const MAX_ROUNDS = 20;

/**
 * The newest dead letters, newest first, read from the end of the stream and never all of it:
 * all drivers' in batches of direct gets going back from the last sequence; one driver's one by
 * one, each the last of its subject up to the sequence before the previous one.
 */
@Injectable()
export class DeadLettersService {
  constructor(@Inject(JETSTREAM) private readonly ctx: JetStreamContext) {}

  async newest(limit: number, driver?: string): Promise<DeadLetterView[]> {
    const stream = this.ctx.subjects.deadLetterStream;
    const { state } = await this.ctx.jsm.streams.info(stream);
    if (state.messages === 0) return [];
    const found = driver ? await this.newestOf(stream, this.ctx.subjects.deadLetter(driver), state, limit) : await this.newestAll(stream, state, limit);
    return found.map((m) => this.view(m));
  }

  private async newestAll(stream: string, state: { first_seq: number; last_seq: number }, limit: number): Promise<StoredMsg[]> {
    const out: StoredMsg[] = [];
    let rounds = 0;
    for await (const batch of readBackwards(this.ctx.jsm, stream, { upper: state.last_seq, first: state.first_seq, batch: limit })) {
      out.push(...batch);
      if (out.length >= limit || ++rounds >= MAX_ROUNDS) break;
    }
    return out.slice(0, limit);
  }

  private async newestOf(stream: string, subject: string, state: { first_seq: number; last_seq: number }, limit: number): Promise<StoredMsg[]> {
    const out: StoredMsg[] = [];
    let upTo = state.last_seq;
    while (out.length < limit && upTo >= state.first_seq) {
      const m = await this.lastUpTo(stream, subject, upTo);
      if (!m) break;
      out.push(m);
      upTo = m.seq - 1;
    }
    return out;
  }

  /** The last message of `subject` at or before sequence `upTo`. */
  private async lastUpTo(stream: string, subject: string, upTo: number): Promise<StoredMsg | undefined> {
    try {
      for await (const m of await this.ctx.jsm.direct.getLastMessagesFor(stream, { multi_last: [subject], up_to_seq: upTo })) return m;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    return undefined;
  }

  private view(m: StoredMsg): DeadLetterView {
    let dl: Partial<DeadLetter> = {};
    try {
      const parsed = m.json<unknown>();
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) dl = parsed as Partial<DeadLetter>;
    } catch {
      // Not written by a driver (someone published on a dead-letter subject): shown as it is.
    }
    const { payload, at: _recorded, ...rest } = dl;
    const readable = typeof payload === 'string';
    const bytes = readable ? Buffer.from(payload, 'base64') : Buffer.from(m.data);
    const view: DeadLetterView = {
      seq: m.seq,
      at: m.time.toISOString(),
      driver: typeof rest.driver === 'string' ? rest.driver : m.subject.slice(m.subject.lastIndexOf('.') + 1),
      subject: typeof rest.subject === 'string' ? rest.subject : '',
      reason: typeof rest.reason === 'string' ? rest.reason : readable ? '' : 'not a dead letter a driver wrote (its whole message is the payload)',
      agent: typeof rest.agent === 'string' ? rest.agent : '',
      payloadBytes: bytes.length,
      preview: bytes.subarray(0, PREVIEW_BYTES).toString('utf8'),
      headers: rest.headers ?? {},
    };
    // Any other field of the letter (streamSeq, and what later versions add), never over ours.
    for (const [key, value] of Object.entries(rest)) if (!(key in view)) (view as unknown as Record<string, unknown>)[key] = value;
    return view;
  }
}
