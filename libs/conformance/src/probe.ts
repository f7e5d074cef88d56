import type { JetStreamManager } from '@nats-io/jetstream';
import type { ConformanceInstruction, DeadLetter, JsonObject, LogLine, Run, Subjects } from '@conveyor/contracts';
import { isTerminalRunStatus } from '@conveyor/contracts';
import { poll } from './stack';
import type { WireWatch } from './wire';

/** A step of a scenario's pipeline: its instruction and the step options that matter. */
export interface ScenarioStep {
  id: string;
  instruction: ConformanceInstruction;
  timeout?: number;
  retries?: number;
  always?: boolean;
}

/** A scenario's failure: what was expected and what was seen. */
export class Failed extends Error {}

export function expect(ok: unknown, why: string): asserts ok {
  if (!ok) throw new Failed(why);
}

/**
 * What scenarios see of the system the kit started: the gateway's API (as any client would use
 * it), the runs stream, and the wire. Every wait is bounded by `timeoutMs`.
 */
export class Probe {
  constructor(
    readonly gatewayUrl: string,
    readonly driver: string,
    readonly subjects: Subjects,
    readonly jsm: JetStreamManager,
    readonly wire: WireWatch,
    readonly timeoutMs: number,
    /** Why the driver is not there any more (it exited by itself), if it is not: waits end at once then. */
    private readonly driverGone: () => string | undefined = () => undefined,
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(this.gatewayUrl + path, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Makes the scenario's pipeline (one per scenario, named after it) and starts a run of it; returns the run id. */
  async start(scenario: string, steps: ScenarioStep[]): Promise<string> {
    await this.request('POST', '/pipelines', {
      name: scenario,
      description: `conformance scenario ${scenario}`,
      resource: RESOURCE_TYPE,
      steps: steps.map((s) => ({ id: s.id, name: s.id, driver: this.driver, config: { conformance: s.instruction as unknown as JsonObject }, ...(s.timeout ? { timeout: s.timeout } : {}), retries: s.retries ?? 0, ...(s.always ? { always: true } : {}) })),
    });
    const r = await this.request<{ runid: string }>('POST', '/resources', { name: scenario, resource: RESOURCE_TYPE, pipeline: scenario, spec: {} });
    return r.runid;
  }

  run(runId: string): Promise<Run> {
    return this.request<Run>('GET', `/runs/${runId}`);
  }

  /** The run once `done` says so; a Failed naming what it last was when that does not come in time. */
  async until(runId: string, what: string, done: (r: Run) => boolean, timeoutMs = this.timeoutMs): Promise<Run> {
    let last: Run | undefined;
    const r = await poll(async () => {
      if (this.driverGone()) return null;
      last = await this.run(runId);
      return done(last) ? last : undefined;
    }, timeoutMs);
    const gone = r === null && this.driverGone();
    if (gone) throw new Failed(gone);
    if (!r) throw new Failed(`${what} did not happen within ${timeoutMs / 1000}s (run ${runId}: ${describeRun(last)})`);
    return r;
  }

  ended(runId: string): Promise<Run> {
    return this.until(runId, 'the run ending', (r) => isTerminalRunStatus(r.status));
  }

  running(runId: string, stepId: string): Promise<Run> {
    return this.until(runId, `step ${stepId} starting`, (r) => r.steps.find((s) => s.id === stepId)?.status === 'running');
  }

  logs(runId: string): Promise<LogLine[]> {
    return this.request<LogLine[]>('GET', `/logs?runid=${runId}`);
  }

  deadLetters(): Promise<Array<Omit<DeadLetter, 'payload'>>> {
    return this.request('GET', `/dead-letters?driver=${this.driver}&limit=100`);
  }

  /** How many records each subject of a run's log holds. */
  async recordCounts(runId: string): Promise<Record<string, number>> {
    const info = await this.jsm.streams.info(this.subjects.runsStream, { subjects_filter: this.subjects.runLog(runId) });
    return info.state.subjects ?? {};
  }

  /** The stream sequence of a run's stored record on a subject matching `filter`. */
  async storedSeq(filter: string): Promise<number | undefined> {
    const m = await this.jsm.streams.getMessage(this.subjects.runsStream, { last_by_subj: filter }).catch(() => null);
    return m?.seq;
  }

  poll<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = this.timeoutMs): Promise<T> {
    return poll(probe, timeoutMs).then((v) => {
      if (v === undefined) throw new Failed(`${what} did not happen within ${timeoutMs / 1000}s`);
      return v;
    });
  }
}

/** The resource type every scenario's pipeline builds: any spec will do. */
export const RESOURCE_TYPE = 'conformance';

export function describeRun(r: Run | undefined): string {
  if (!r) return 'not readable';
  const steps = r.steps.map((s) => `${s.id} ${s.status}${s.attempts > 1 ? ` (${s.attempts} attempts)` : ''}${s.message ? `: ${s.message}` : ''}`).join('; ');
  return `${r.status}${r.message ? ` (${r.message})` : ''}; ${steps}`;
}
