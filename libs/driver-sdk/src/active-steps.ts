export type AbortReason = 'cancelled' | 'timeout' | 'shutdown';

/** How long a handler may go on after its abort signal fired before the SDK stops waiting for it. */
export const ABORT_GRACE_MS = 5_000;

/** One step attempt running on this agent, abortable by a cancel, its timeout or shutdown. */
export class ActiveStep {
  readonly controller = new AbortController();
  readonly since = new Date().toISOString();
  reason?: AbortReason;
  private deadline?: NodeJS.Timeout;
  private giveUp?: (err: Error) => void;
  /**
   * Rejects `graceMs` after the abort: a handler that ignores its signal does not hold the
   * step (its timeout, a drain) for ever. The SDK races the handler with it.
   */
  readonly abandoned = new Promise<never>((_, reject) => (this.giveUp = reject));

  constructor(
    readonly runId: string,
    readonly stepId: string,
    readonly driver: string,
    /** Cleanup steps are never cancelled: they are what a cancel leads to. */
    readonly cancellable: boolean,
    private readonly graceMs = ABORT_GRACE_MS,
  ) {
    this.abandoned.catch(() => undefined);
  }

  abort(reason: AbortReason, detail: string): void {
    if (this.reason) return;
    if (reason === 'cancelled' && !this.cancellable) return;
    this.reason = reason;
    this.controller.abort(new Error(detail));
    this.deadline = setTimeout(() => this.giveUp?.(new Error(`${detail}; the driver did not stop within ${this.graceMs / 1000}s of being told to, so its result is no longer waited for`)), this.graceMs);
    this.deadline.unref();
  }

  /** The attempt is over: no deadline may fire after it. */
  done(): void {
    clearTimeout(this.deadline);
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

  /** How many deliveries of a step of the run are being handled here (including their hand-offs). */
  count(runId: string, stepId: string): number {
    let n = 0;
    for (const s of this.byRun.get(runId) ?? []) if (s.stepId === stepId) n++;
    return n;
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
