import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { WireRequest, WireState } from './wire-check-process';

// This file runs from test/support under ts-jest and from dist/test/support in compiled programs.
const UP = join(__dirname, '..', '..');
const PROCESS = join(basename(UP) === 'dist' ? UP : join(UP, 'dist'), 'test', 'support', 'wire-check-process.js');

let enabled = false;
/** Every check started in this test file (jest gives each file its own modules). */
const checks = new Set<WireCheck>();

/**
 * Turns the check on for the servers this test file starts (test/support/wire-check.setup.ts
 * does, for every e2e suite; the bench and the chaos suite, which start servers outside jest,
 * leave it off).
 */
export function enableWireCheck(): void {
  enabled = true;
}

export function wireCheckEnabled(): boolean {
  return enabled;
}

/**
 * Checks every Conveyor message sent through a nats-server (or cluster) against the JSON Schema
 * of its subject (schemas/, generated from libs/contracts), as the system sends them: the
 * gateway's, the drivers' and the tests' own. The checking runs in a process of its own
 * (./wire-check-process.ts, from dist/: `npm run build`), so it costs the gateway a suite runs
 * in this process nothing; this is its handle.
 */
export class WireCheck {
  private last?: WireState;
  private readonly waiting: Array<(s: WireState) => void> = [];
  private exited = false;
  private closing?: Promise<WireState>;

  private constructor(
    private readonly proc: ChildProcess,
    readonly url: string,
  ) {
    proc.on('message', (m: { op: string; state?: WireState }) => {
      if (m.op !== 'state' || !m.state) return;
      this.last = m.state;
      this.waiting.splice(0).forEach((resolve) => resolve(m.state!));
    });
    proc.once('exit', () => {
      this.exited = true;
      // Nothing more will come: whoever waits gets the last state there was.
      this.waiting.splice(0).forEach((resolve) => resolve(this.last ?? crashed()));
    });
  }

  /** Starts checking what goes through the server(s) at `url` (a restarted server is reconnected to). */
  static async attach(url: string | string[], user?: { user: string; pass: string }): Promise<WireCheck> {
    if (!existsSync(PROCESS)) throw new Error(`${PROCESS} is missing: run "npm run build" first (test/run.sh does)`);
    const servers = [url].flat().join(',');
    const proc = fork(PROCESS, [], {
      env: { ...process.env, WIRE_URL: servers, WIRE_USER: user?.user ?? '', WIRE_PASS: user?.pass ?? '' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the wire check did not subscribe to ${servers} within 10 s`)), 10_000);
      proc.on('message', (m: { op: string }) => m.op === 'ready' && (clearTimeout(timer), resolve()));
      proc.once('exit', (code) => (clearTimeout(timer), reject(new Error(`the wire check exited (${code}) before it subscribed to ${servers}`))));
    });
    const check = new WireCheck(proc, servers);
    checks.add(check);
    return check;
  }

  /**
   * Violations on subjects matching `subject` are the test's own doing (it publishes a poison
   * message), not failures; seeing none is one (the check would be blind).
   */
  expectViolations(subject: RegExp): void {
    this.send({ op: 'expect', source: subject.source });
  }

  /** What it saw so far: everything published before the call. */
  state(): Promise<WireState> {
    return this.ask({ op: 'state' });
  }

  /** Its final state; the check's process ends. */
  close(): Promise<WireState> {
    if (this.exited) return Promise.resolve(this.last ?? crashed());
    // Once: a second close (a server's dispose, then the suite's end) would write to a process
    // that is already leaving.
    return (this.closing ??= this.ask({ op: 'close' }));
  }

  private ask(req: WireRequest): Promise<WireState> {
    if (this.exited) return Promise.resolve(this.last ?? crashed());
    const answered = new Promise<WireState>((resolve) => this.waiting.push(resolve));
    this.send(req);
    return answered;
  }

  private send(req: WireRequest): void {
    // A process ending as this is written (EPIPE): its exit answers whoever waits.
    if (!this.exited && this.proc.connected) this.proc.send(req, () => undefined);
  }
}

function crashed(): WireState {
  return { seen: {}, violations: [], violationCount: 1, missed: ['(the wire check process ended before it reported)'] };
}

/** One line per violation kept, with the subject, the schema and what is wrong. */
function report(s: WireState): string {
  const lines = s.violations.map((v) => `  ${v.subject} (${v.schema}.schema.json): ${v.problem}`);
  if (s.violationCount > s.violations.length) lines.push(`  … and ${s.violationCount - s.violations.length} more`);
  for (const m of s.missed) lines.push(`  no violation was seen on ${m}, where the test expected its own`);
  return lines.join('\n');
}

/**
 * Every violation seen in this test file's servers, once each has delivered what it was sent;
 * ends the checks. Empty when the wire was clean.
 */
export async function wireViolations(): Promise<string> {
  const found: string[] = [];
  for (const check of checks) {
    const s = await check.close();
    if (s.violationCount || s.missed.length) found.push(`${s.violationCount} message(s) on ${check.url} broke the wire protocol (docs/protocol.md, schemas/):\n${report(s)}`);
  }
  checks.clear();
  return found.join('\n');
}
