import { isName } from './names';

export const DEFAULT_PREFIX = 'conveyor';

/**
 * Every NATS subject and JetStream resource name the system uses is built here, from one
 * configurable prefix, so that `nats sub '<prefix>.>'` shows all traffic of one installation.
 *
 *   <prefix>.steps.<driver>                 work for any agent of a driver (durable)
 *   <prefix>.steps.<driver>.<machine>       work pinned to one build machine (durable)
 *   <prefix>.events.<run>.<step>.<kind>     step events: started, succeeded, failed, retrying, skipped
 *   <prefix>.events.<run>.run.<kind>        run events: queued, succeeded, failed, cancelled
 *   <prefix>.logs.<run>.<driver>.<step>     log lines of a step
 *   <prefix>.logs.<run>.end                 end-of-logs marker, published when the run ends
 *   <prefix>.control.<run>.cancel           cancel signal (core NATS) to the agent running a step
 *   <prefix>.dlq.<driver>                   dead letters: poison messages terminated by a driver
 */
export class Subjects {
  readonly prefix: string;

  constructor(prefix: string = DEFAULT_PREFIX) {
    if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) {
      throw new Error(`invalid subject prefix ${JSON.stringify(prefix)}: tokens of letters, digits, "_" and "-" separated by "."`);
    }
    this.prefix = prefix;
  }

  /** Stream and bucket names may not contain dots; derived from the prefix so installations can share a server. */
  get streamPrefix(): string {
    return this.prefix.replace(/\./g, '_').toUpperCase();
  }

  get stepsStream(): string { return `${this.streamPrefix}_STEPS`; }
  get eventsStream(): string { return `${this.streamPrefix}_EVENTS`; }
  get logsStream(): string { return `${this.streamPrefix}_LOGS`; }
  get deadLetterStream(): string { return `${this.streamPrefix}_DLQ`; }

  bucket(kind: 'definitions' | 'pipelines' | 'resources' | 'runs' | 'cancels' | 'agents'): string {
    return `${this.prefix.replace(/\./g, '_')}-${kind}`;
  }

  get allSteps(): string { return `${this.prefix}.steps.>`; }
  get allEvents(): string { return `${this.prefix}.events.>`; }
  get allLogs(): string { return `${this.prefix}.logs.>`; }
  get allDeadLetters(): string { return `${this.prefix}.dlq.>`; }

  /** Work for a driver; with `machine`, work pinned to the agents of one build machine. */
  step(driver: string, machine?: string): string {
    assertToken('driver', driver);
    if (machine === undefined) return `${this.prefix}.steps.${driver}`;
    assertToken('machine', machine);
    return `${this.prefix}.steps.${driver}.${machine}`;
  }

  stepEvent(runId: string, stepId: string, kind: string): string {
    return `${this.prefix}.events.${token(runId)}.${token(stepId)}.${token(kind)}`;
  }

  runEvent(runId: string, kind: string): string {
    return `${this.prefix}.events.${token(runId)}.run.${token(kind)}`;
  }

  runEvents(runId: string): string {
    return `${this.prefix}.events.${token(runId)}.>`;
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
