import { connect } from '@nats-io/transport-node';
import { Subjects } from '@conveyor/contracts';
import { WireValidator, wireSchemaOf, type WireSchemaName, type WireViolation } from '@conveyor/wire-schemas';

/**
 * The wire check's own process (see ./wire-check.ts, which forks it from dist/): a core-NATS
 * subscriber that validates every Conveyor message sent through a nats-server against the
 * schema of its subject. Out of the test's process, so that checking costs the gateway that a
 * suite runs in-process nothing. Talks to its parent over the IPC channel:
 *   parent → {op: 'expect', source}   violations on subjects matching this RegExp are the test's own
 *   parent → {op: 'state'}            answered with a WireState once the server delivered all sent before
 *   parent → {op: 'close'}            the same, then it exits
 *   child  → {op: 'ready'}            subscribed
 * Its server and user come from WIRE_URL (comma-separated), WIRE_USER, WIRE_PASS, WIRE_PREFIX.
 */

/** Violations kept for the report (all are counted). */
const KEEP = 20;
/**
 * Messages are checked when the traffic pauses this long, or once this many wait: the check
 * takes its CPU while the system under test is quiet, not in the middle of a burst.
 */
const QUIET_MS = 50;
const MAX_WAITING = 5_000;

export interface WireState {
  seen: Partial<Record<WireSchemaName, number>>;
  violations: WireViolation[];
  violationCount: number;
  /** Expected violations (by pattern) never seen. */
  missed: string[];
}

export type WireRequest = { op: 'expect'; source: string } | { op: 'state' } | { op: 'close' };

async function main(): Promise<void> {
  const subjects = new Subjects(process.env.WIRE_PREFIX || 'conveyor');
  const validator = new WireValidator(subjects);
  const state: WireState = { seen: {}, violations: [], violationCount: 0, missed: [] };
  const expected: Array<{ subject: RegExp; seen: number }> = [];
  const record = (subject: string, data: Uint8Array, header: (name: string) => string | undefined): void => {
    const kind = wireSchemaOf(subjects, subject);
    if (!kind) return;
    state.seen[kind] = (state.seen[kind] ?? 0) + 1;
    const v = validator.check(subject, data, header);
    if (!v) return;
    const mine = expected.find((e) => e.subject.test(subject));
    if (mine) {
      mine.seen++;
      return;
    }
    state.violationCount++;
    if (state.violations.length < KEEP) state.violations.push(v);
  };

  // Received and not checked yet (see QUIET_MS).
  let waiting: Array<{ subject: string; data: Uint8Array; headers: Map<string, string> }> = [];
  let quiet: NodeJS.Timeout | undefined;
  const checkWaiting = (): void => {
    clearTimeout(quiet);
    quiet = undefined;
    const batch = waiting;
    waiting = [];
    for (const m of batch) record(m.subject, m.data, (h) => m.headers.get(h.toLowerCase()) || undefined);
  };
  const receive = (subject: string, data: Uint8Array, headers: Map<string, string>): void => {
    waiting.push({ subject, data, headers });
    if (waiting.length >= MAX_WAITING) return checkWaiting();
    clearTimeout(quiet);
    quiet = setTimeout(checkWaiting, QUIET_MS);
  };

  const nc = await connect({
    servers: (process.env.WIRE_URL ?? '').split(','),
    name: 'wire-check',
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
    ...(process.env.WIRE_USER ? { user: process.env.WIRE_USER, pass: process.env.WIRE_PASS } : {}),
  });
  for (const subject of [`${subjects.prefix}.>`, `$KV.${subjects.bucket('agents')}.>`, `$KV.${subjects.bucket('cancels')}.>`]) {
    nc.subscribe(subject, {
      callback: (err, m) => {
        if (err) return;
        const headers = new Map<string, string>();
        for (const k of m.headers?.keys() ?? []) headers.set(k.toLowerCase(), m.headers!.get(k));
        // A copy: it is checked after the callback returns.
        receive(m.subject, m.data.slice(), headers);
      },
    });
  }
  await nc.flush();

  // Everything published before the request reached this subscriber once the server answers a flush.
  const answer = async (): Promise<WireState> => {
    if (!nc.isClosed()) await Promise.race([nc.flush(), new Promise((r) => setTimeout(r, 5_000))]).catch(() => undefined);
    checkWaiting();
    return { ...state, missed: expected.filter((e) => !e.seen).map((e) => String(e.subject)) };
  };
  process.on('message', (req: WireRequest) => {
    if (req.op === 'expect') {
      expected.push({ subject: new RegExp(req.source), seen: 0 });
      return;
    }
    void answer().then(async (s) => {
      process.send!({ op: 'state', state: s });
      if (req.op !== 'close') return;
      await nc.close().catch(() => undefined);
      process.disconnect();
    });
  });
  // The parent gone (a test process killed): nothing left to report to.
  process.on('disconnect', () => void nc.close().finally(() => process.exit(0)));
  process.send!({ op: 'ready' });
}

main().catch((err) => {
  console.error(`wire check: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
