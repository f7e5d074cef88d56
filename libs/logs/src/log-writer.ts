import type { LogLine, LogStream, Subjects } from '@conveyor/contracts';
import type { LogPublisher } from './log-publisher';

/** Longer lines are split into several (never dropped), so one message stays small. */
export const MAX_LINE_BYTES = 16 * 1024;
/** Publishes in flight above which a producer that can wait (`ready()`) should. */
const WINDOW = 512;

export interface LogTarget {
  runId: string;
  driver: string;
  stepId: string;
  attempt: number;
}

/**
 * Turns a step's output into ordered log lines on `<prefix>.logs.<run>.<driver>.<step>`.
 * Publishes are pipelined on one connection (JetStream stores them in the order sent; see
 * LogPublisher), so a 10,000-line build does not wait a round trip per line; producers that can
 * pause (a build's output stream) await `ready()` to bound what is in flight.
 *
 * A line is numbered when written but sent at the end of the event loop's turn (or by
 * `flush()`), so writing a line costs a step's critical path (a handler about to start, a
 * hand-off about to be published) nothing.
 */
export class StepLogWriter {
  private seq = 0;
  private readonly partial: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
  /** Lines sent and not acknowledged yet. */
  private inflight = 0;
  /** Who waits for fewer lines in flight: for fewer than WINDOW (`ready`), or none (`flush`). */
  private waiters: Array<{ below: number; wake: () => void }> = [];
  /** Lines written in this turn of the event loop, not sent yet. */
  private readonly unsent: string[] = [];
  private sendScheduled = false;
  private failures = 0;
  private readonly subject: string;
  private readonly settled = (stored: boolean): void => {
    // A lost log line must not fail the build; the gap shows in `seq`.
    if (!stored) this.failures++;
    this.inflight--;
    if (this.waiters.length) this.wake();
  };

  constructor(
    private readonly publisher: LogPublisher,
    subjects: Subjects,
    private readonly target: LogTarget,
    /** Masks secrets before a line leaves the process (see issue 6); identity by default. */
    private readonly mask: (line: string) => string = (l) => l,
  ) {
    this.subject = subjects.log(target.runId, target.driver, target.stepId);
  }

  info(line: string): void {
    this.emit('system', line);
  }
  warn(line: string): void {
    this.emit('system', `warning: ${line}`);
  }
  error(line: string): void {
    this.emit('system', `error: ${line}`);
  }

  write(stream: 'stdout' | 'stderr', text: string | Buffer): void {
    const data = this.partial[stream] + (typeof text === 'string' ? text : text.toString('utf8'));
    const lines = data.split('\n');
    this.partial[stream] = lines.pop() ?? '';
    for (const l of lines) this.emit(stream, l.endsWith('\r') ? l.slice(0, -1) : l);
    // A producer that never writes a newline must not grow the buffer for ever: full-size
    // pieces go out, the rest waits for more.
    while (Buffer.byteLength(this.partial[stream]) > MAX_LINE_BYTES) {
      const [head, rest] = cutFront(this.partial[stream], MAX_LINE_BYTES);
      this.emit(stream, head);
      this.partial[stream] = rest;
    }
  }

  /** Lines published so far (including those still in flight). */
  get lines(): number {
    return this.seq;
  }

  /** Writes out partial lines and waits until every line is stored. */
  async flush(): Promise<{ failed: number }> {
    for (const s of ['stdout', 'stderr'] as const) {
      if (this.partial[s]) this.emit(s, this.partial[s]);
      this.partial[s] = '';
    }
    this.send();
    await this.fewerThan(1);
    return { failed: this.failures };
  }

  /**
   * While WINDOW or more lines are in flight or waiting to be sent: a promise of when fewer are;
   * undefined otherwise (nothing to wait for, so a fast producer pays no promise per chunk).
   */
  backlog(): Promise<void> | undefined {
    return this.unsent.length + this.inflight >= WINDOW ? this.ready() : undefined;
  }

  /** Resolves when fewer than WINDOW lines are in flight. */
  async ready(): Promise<void> {
    if (this.unsent.length + this.inflight >= WINDOW) this.send();
    await this.fewerThan(WINDOW);
  }

  private fewerThan(below: number): Promise<void> {
    if (this.inflight < below) return Promise.resolve();
    return new Promise((wake) => this.waiters.push({ below, wake }));
  }

  private wake(): void {
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (this.inflight < w.below) w.wake();
      else still.push(w);
    }
    this.waiters = still;
  }

  private emit(stream: LogStream, text: string): void {
    const { runId, driver, stepId, attempt } = this.target;
    for (const piece of splitLong(this.mask(text))) {
      // Written out, not `{ ...this.target, seq, … }`: on Node 20 each property defined after a spread costs about a microsecond.
      const line: LogLine = { runId, driver, stepId, attempt, seq: ++this.seq, ts: new Date().toISOString(), stream, line: piece };
      this.unsent.push(JSON.stringify(line));
    }
    if (!this.sendScheduled && this.unsent.length) {
      this.sendScheduled = true;
      setImmediate(() => this.send());
    }
  }

  private send(): void {
    this.sendScheduled = false;
    for (const data of this.unsent.splice(0)) {
      this.inflight++;
      this.publisher.publish(this.subject, data, this.settled);
    }
  }
}

/** Cuts a string at most `max` UTF-8 bytes long off the front, never inside a character. */
function cutFront(text: string, max: number): [string, string] {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= max) return [text, ''];
  let end = max;
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--; // a continuation byte: back up to the character's start
  return [buf.subarray(0, end).toString('utf8'), buf.subarray(end).toString('utf8')];
}

function splitLong(line: string): string[] {
  const out: string[] = [];
  let rest = line;
  do {
    const [head, tail] = cutFront(rest, MAX_LINE_BYTES);
    out.push(head);
    rest = tail;
  } while (rest);
  return out;
}
