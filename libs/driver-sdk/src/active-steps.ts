export type AbortReason = 'cancelled' | 'timeout' | 'shutdown';

/** One step attempt running on this agent, abortable by a cancel, its timeout or shutdown. */
export class ActiveStep {
  readonly controller = new AbortController();
  readonly since = new Date().toISOString();
  reason?: AbortReason;

  constructor(
    readonly runId: string,
    readonly stepId: string,
    readonly driver: string,
    /** Cleanup steps are never cancelled: they are what a cancel leads to. */
    readonly cancellable: boolean,
  ) {}

  abort(reason: AbortReason, detail: string): void {
    if (this.reason) return;
    if (reason === 'cancelled' && !this.cancellable) return;
    this.reason = reason;
    this.controller.abort(new Error(detail));
  }
}

/** The steps running on this agent, by run: where a cancel signal finds what to abort. */
export class ActiveSteps {
  private readonly byRun = new Map<string, Set<ActiveStep>>();

  add(step: ActiveStep): void {
    const set = this.byRun.get(step.runId) ?? new Set();
    set.add(step);
    this.byRun.set(step.runId, set);
  }

  delete(step: ActiveStep): void {
    const set = this.byRun.get(step.runId);
    set?.delete(step);
    if (set?.size === 0) this.byRun.delete(step.runId);
  }

  cancelRun(runId: string, detail: string): number {
    let n = 0;
    for (const s of this.byRun.get(runId) ?? []) {
      s.abort('cancelled', detail);
      n++;
    }
    return n;
  }

  abortAll(reason: AbortReason, detail: string): void {
    for (const set of this.byRun.values()) for (const s of set) s.abort(reason, detail);
  }

  list(): Array<{ runId: string; stepId: string; driver: string; since: string }> {
    const out = [];
    for (const set of this.byRun.values()) for (const s of set) out.push({ runId: s.runId, stepId: s.stepId, driver: s.driver, since: s.since });
    return out;
  }

  get size(): number {
    let n = 0;
    for (const set of this.byRun.values()) n += set.size;
    return n;
  }
}
