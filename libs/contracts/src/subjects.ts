import { isName } from './names';

export const DEFAULT_PREFIX = 'conveyor';

/** The machine token of work any build machine may take. */
export const ANY_MACHINE = 'any';

/** The gateway's durable consumer of the runs stream (its projector); no driver may be named so. */
export const PROJECTOR_CONSUMER = 'gateway-runs';

/** The driver token of an approval step's work (a person's decision: no consumer reads it); no driver may be named so. */
export const APPROVAL_DRIVER = 'approval';

/** The gateways' shared durable consumer of the ticks stream: it starts each tick's run. */
export const TICKS_CONSUMER = 'gateway-ticks';

/** The gateways' shared durable consumer of the reports stream: it posts commit statuses and notifications. */
export const REPORTS_CONSUMER = 'gateway-reports';

/** What a record in a run's log is, read from its subject (see `Subjects.parseRunRecord`). */
export type RunRecordSubject =
  | { kind: 'work'; runId: string; stepId: string; driver: string; machine?: string }
  | { kind: 'claim' | 'retry' | 'release' | 'started' | 'done'; runId: string; stepId: string }
  | { kind: 'end'; runId: string };

/**
 * Every NATS subject and JetStream resource name the system uses is built here, from one
 * configurable prefix, so that `nats sub '<prefix>.>'` shows all traffic of one installation.
 *
 * A run's log — every record that moves a run on, in one stream, each one written only if
 * the run's log still ends where its writer read it (see libs/run-log):
 *   <prefix>.steps.<run>.<step>.<driver>.<machine>   work for a driver, on one build machine or `any`;
 *                                                    it also records how the step before it ended
 *   <prefix>.steps.<run>.<step>.claim                an agent starts an attempt of the step
 *   <prefix>.steps.<run>.<step>.retry                the attempt failed; the step runs again after a pause
 *   <prefix>.steps.<run>.<step>.release              the agent gave the step back unfinished (shutdown)
 *   <prefix>.steps.<run>.<step>.done                 how a step of a graph pipeline ended (see StepDone)
 *   <prefix>.steps.<run>.end                         the run ended, with how its last step ended
 * Beside it, in the same stream and outside the fence:
 *   <prefix>.events.<run>.<step>.started             an agent started a step's first delivery (see libs/driver-sdk)
 *   <prefix>.logs.<run>.<driver>.<step>              log lines of a step
 *   <prefix>.logs.<run>.end                          end-of-logs marker, published once the run ended
 *   <prefix>.control.<run>.cancel                    cancel signal (core NATS) to the agent running a step
 *   <prefix>.dlq.<driver>                            dead letters: poison messages terminated by a driver
 *   <prefix>.ticks.<schedule>                        a schedule's ticks, one per due time (see the gateway's schedules)
 *   <prefix>.reports.<run>.<kind>.<which>            a commit status or notification to send (see the gateway's reports)
 *   <prefix>.run-index.<run>                         one per run, stored as its run record is made: the order runs are listed in
 *
 * The records of a run differ in their number of tokens, so no step id (`end`, `claim`) or
 * driver name can make one kind look like another.
 */
export class Subjects {
  readonly prefix: string;
  private readonly tokens: number;

  constructor(prefix: string = DEFAULT_PREFIX) {
    if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) {
      throw new Error(`invalid subject prefix ${JSON.stringify(prefix)}: tokens of letters, digits, "_" and "-" separated by "."`);
    }
    this.prefix = prefix;
    this.tokens = prefix.split('.').length;
  }

  /** Stream and bucket names may not contain dots; derived from the prefix so installations can share a server. */
  get streamPrefix(): string {
    return this.prefix.replace(/\./g, '_').toUpperCase();
  }

  /** Runs' logs: step work and every other record of a run. */
  get runsStream(): string { return `${this.streamPrefix}_RUNS`; }
  get logsStream(): string { return `${this.streamPrefix}_LOGS`; }
  get deadLetterStream(): string { return `${this.streamPrefix}_DLQ`; }
  get ticksStream(): string { return `${this.streamPrefix}_TICKS`; }
  get reportsStream(): string { return `${this.streamPrefix}_REPORTS`; }
  get runIndexStream(): string { return `${this.streamPrefix}_RUN_INDEX`; }

  bucket(kind: 'definitions' | 'pipelines' | 'resources' | 'runs' | 'cancels' | 'agents' | 'open-runs' | 'groups' | 'schedules' | 'tick-runs' | 'triggers' | 'hook-deliveries' | 'artifacts' | 'caches'): string {
    return `${this.prefix.replace(/\./g, '_')}-${kind}`;
  }

  get allRunRecords(): string { return `${this.prefix}.steps.>`; }
  get allEvents(): string { return `${this.prefix}.events.>`; }
  get allLogs(): string { return `${this.prefix}.logs.>`; }
  get allDeadLetters(): string { return `${this.prefix}.dlq.>`; }
  get allTicks(): string { return `${this.prefix}.ticks.*`; }
  get allReports(): string { return `${this.prefix}.reports.>`; }
  get allRunIndex(): string { return `${this.prefix}.run-index.*`; }

  /** A run's entry in the run index (see the runs store). */
  runIndex(runId: string): string {
    return `${this.prefix}.run-index.${token(runId)}`;
  }

  /** The run id of a run-index entry's subject. */
  runOfIndexEntry(subject: string): string {
    return subject.slice(`${this.prefix}.run-index.`.length);
  }

  /** A report job's subject: one per job, so a job is stored once (its publish expects the subject empty). */
  report(runId: string, kind: 'status' | 'notify', which: string): string {
    assertToken('report', which);
    return `${this.prefix}.reports.${token(runId)}.${kind}.${which}`;
  }

  /** A schedule's ticks: the last one is what a gateway's next tick is fenced on. */
  ticks(schedule: string): string {
    assertToken('schedule', schedule);
    return `${this.prefix}.ticks.${schedule}`;
  }

  /** Every record of one run: what a fenced write's expectation is checked against. */
  runLog(runId: string): string {
    return `${this.prefix}.steps.${token(runId)}.>`;
  }

  /** Work of `stepId` for `driver`; with `machine`, for the agents of that build machine only. */
  work(runId: string, stepId: string, driver: string, machine?: string): string {
    assertToken('driver', driver);
    if (machine !== undefined) assertToken('machine', machine);
    return `${this.prefix}.steps.${token(runId)}.${token(stepId)}.${driver}.${machine ?? ANY_MACHINE}`;
  }

  /** What a driver's consumer reads: its work for any machine, or pinned to `machine`. */
  workFor(driver: string, machine?: string): string {
    assertToken('driver', driver);
    if (machine !== undefined) assertToken('machine', machine);
    return `${this.prefix}.steps.*.*.${driver}.${machine ?? ANY_MACHINE}`;
  }

  /** Every work record of one step of a run (its normal and its cleanup run), whatever its driver and machine. */
  stepWork(runId: string, stepId: string): string {
    return `${this.prefix}.steps.${token(runId)}.${token(stepId)}.*.*`;
  }

  /** Every record of one step of a run: its work, claims, retries, releases and end (what a graph's claims are fenced on). */
  stepLog(runId: string, stepId: string): string {
    return `${this.prefix}.steps.${token(runId)}.${token(stepId)}.>`;
  }

  stepRecord(runId: string, stepId: string, kind: 'claim' | 'retry' | 'release' | 'done'): string {
    return `${this.prefix}.steps.${token(runId)}.${token(stepId)}.${kind}`;
  }

  /** An agent started the first delivery of a step: recorded, not fenced (it moves no run on). */
  stepStarted(runId: string, stepId: string): string {
    return `${this.prefix}.events.${token(runId)}.${token(stepId)}.started`;
  }

  /** Every start of a run's steps recorded beside its log. */
  runStarts(runId: string): string {
    return `${this.prefix}.events.${token(runId)}.*.started`;
  }

  runEnd(runId: string): string {
    return `${this.prefix}.steps.${token(runId)}.end`;
  }

  /** The kind, run and step of a record of a run's log, from its subject; undefined for anything else. */
  parseRunRecord(subject: string): RunRecordSubject | undefined {
    const t = subject.split('.');
    if (t.length <= this.tokens + 2 || t.slice(0, this.tokens).join('.') !== this.prefix) return undefined;
    const [runId, stepId, a, b] = t.slice(this.tokens + 1);
    const rest = t.length - this.tokens - 1;
    if (t[this.tokens] === 'events') return rest === 3 && a === 'started' ? { kind: 'started', runId, stepId } : undefined;
    if (t[this.tokens] !== 'steps') return undefined;
    if (rest === 2 && stepId === 'end') return { kind: 'end', runId };
    if (rest === 3 && (a === 'claim' || a === 'retry' || a === 'release' || a === 'done')) return { kind: a, runId, stepId };
    if (rest === 4) return { kind: 'work', runId, stepId, driver: a, machine: b === ANY_MACHINE ? undefined : b };
    return undefined;
  }

  /** The durable consumer that the agents of `driver` (on `machine`, for pinned work) share. */
  consumer(driver: string, machine?: string): string {
    assertToken('driver', driver);
    if (driver === PROJECTOR_CONSUMER) throw new Error(`the driver name "${driver}" is reserved: it is the gateway's consumer of ${this.runsStream}`);
    if (driver === APPROVAL_DRIVER) throw new Error(`the driver name "${driver}" is reserved: approval steps' work waits on it for a person, not a driver`);
    if (machine === undefined) return driver;
    assertToken('machine', machine);
    return `${driver}_${machine}`;
  }

  /** The driver and machine of a drivers' durable consumer, from its name; undefined for any other consumer. */
  parseConsumer(name: string): { driver: string; machine?: string } | undefined {
    const [driver, machine, extra] = name.split('_');
    return isName(driver) && (machine === undefined || isName(machine)) && extra === undefined ? { driver, machine } : undefined;
  }

  log(runId: string, driver: string, stepId: string): string {
    return `${this.prefix}.logs.${token(runId)}.${token(driver)}.${token(stepId)}`;
  }

  /** All log lines of a run, and its end marker. */
  runLogs(runId: string): string {
    return `${this.prefix}.logs.${token(runId)}.>`;
  }

  logsEnd(runId: string): string {
    return `${this.prefix}.logs.${token(runId)}.end`;
  }

  cancel(runId: string): string {
    return `${this.prefix}.control.${token(runId)}.cancel`;
  }

  get allCancels(): string {
    return `${this.prefix}.control.*.cancel`;
  }

  /** The run id of a cancel signal's subject. */
  parseCancel(subject: string): string | undefined {
    return subject.split('.')[this.tokens + 1];
  }

  deadLetter(driver: string): string {
    return `${this.prefix}.dlq.${token(driver)}`;
  }
}

function assertToken(what: string, value: string): void {
  if (!isName(value)) throw new Error(`invalid ${what} name ${JSON.stringify(value)}`);
}

/** Ids that we generate are safe; anything else must not smuggle wildcards or dots into a subject. */
function token(value: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(value)) throw new Error(`invalid subject token ${JSON.stringify(value)}`);
  return value;
}
