import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Subjects } from '@conveyor/contracts';
import { WireValidator, wireSchemaOf, type WireSchemaName, type WireViolation } from '@conveyor/wire-schemas';

/** Violations kept per server for the report (all are counted). */
const KEEP = 20;

let validator: WireValidator | undefined;
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
 * A core-NATS subscriber on one nats-server that checks every Conveyor message sent through it
 * against the JSON Schema of its subject (schemas/, generated from libs/contracts), as the
 * system sends them: the gateway's, the drivers' and the tests' own. Cheap: one subscription
 * per subject space, and one compiled schema per message kind.
 */
export class WireCheck {
  readonly violations: WireViolation[] = [];
  /** Violations seen, including those not kept. */
  violationCount = 0;
  /** Messages checked, by schema. */
  readonly seen = new Map<WireSchemaName, number>();
  /** Violations a test provokes on purpose (a poison message it publishes), by subject pattern, and how many were seen. */
  private readonly expected: Array<{ subject: RegExp; seen: number }> = [];

  private constructor(
    private readonly nc: NatsConnection,
    readonly url: string,
  ) {}

  /** Starts checking what goes through the server at `url` (a restarted server is reconnected to). */
  static async attach(url: string | string[], user?: { user: string; pass: string }, prefix = 'conveyor'): Promise<WireCheck> {
    const subjects = new Subjects(prefix);
    validator ??= new WireValidator(subjects);
    const nc = await connect({ servers: url, name: 'wire-check', maxReconnectAttempts: -1, reconnectTimeWait: 100, ...user });
    const check = new WireCheck(nc, [url].flat().join(','));
    for (const subject of [`${prefix}.>`, `$KV.${subjects.bucket('agents')}.>`, `$KV.${subjects.bucket('cancels')}.>`]) {
      nc.subscribe(subject, {
        callback: (err, m) => {
          if (!err) check.record(m.subject, m.data, (h) => m.headers?.get(h) || undefined);
        },
      });
    }
    await nc.flush();
    checks.add(check);
    return check;
  }

  /**
   * Violations on subjects matching `subject` are the test's own doing (it publishes a poison
   * message), not failures; seeing none is one (the check would be blind).
   */
  expectViolations(subject: RegExp): void {
    this.expected.push({ subject, seen: 0 });
  }

  /** Waits until the server has sent this subscriber everything published before the call. */
  async settle(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.flush().catch(() => undefined);
  }

  /** Expected violations never seen. */
  get missedExpected(): number {
    return this.expected.filter((e) => !e.seen).length;
  }

  async close(): Promise<void> {
    await this.settle();
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
  }

  /** One line per violation kept, with the subject, the schema and what is wrong. */
  report(): string {
    const lines = this.violations.map((v) => `  ${v.subject} (${v.schema}.schema.json): ${v.problem}`);
    for (const e of this.expected) if (!e.seen) lines.push(`  no violation was seen on ${e.subject}, where the test expected its own`);
    if (this.violationCount > this.violations.length) lines.push(`  … and ${this.violationCount - this.violations.length} more`);
    return lines.join('\n');
  }

  private record(subject: string, data: Uint8Array, header: (name: string) => string | undefined): void {
    const kind = wireSchemaOf(validator!.subjects, subject);
    if (!kind) return;
    this.seen.set(kind, (this.seen.get(kind) ?? 0) + 1);
    const v = validator!.check(subject, data, header);
    if (!v) return;
    const expected = this.expected.find((e) => e.subject.test(subject));
    if (expected) {
      expected.seen++;
      return;
    }
    this.violationCount++;
    if (this.violations.length < KEEP) this.violations.push(v);
  }
}

/**
 * Every violation seen in this test file's servers, once each has delivered what it was sent;
 * closes the checks. Empty when the wire was clean.
 */
export async function wireViolations(): Promise<string> {
  const found: string[] = [];
  for (const check of checks) {
    await check.close();
    if (check.violationCount || check.missedExpected) found.push(`${check.violationCount} message(s) on ${check.url} broke the wire protocol (docs/protocol.md, schemas/):\n${check.report()}`);
  }
  checks.clear();
  return found.join('\n');
}
