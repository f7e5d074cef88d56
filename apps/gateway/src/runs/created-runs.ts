import { Injectable } from '@nestjs/common';
import type { Run } from '@conveyor/contracts';
import type { Versioned } from '@conveyor/store';

/** Records kept for the projector (the oldest is forgotten first: runs another gateway folds are never taken). */
const KEPT = 1_000;
/**
 * How long the projector waits for a start of this gateway to finish before it folds without
 * it: the first work can come back before the answer to its write, but not by much.
 */
const WAIT_MS = 1_000;

/**
 * Run records this gateway is writing or has just written, handed to its projector: the first
 * fold of a run starts from the record its starter wrote instead of reading it, and does not
 * race the starter to make it (a run's first work is stored, and on its way to the projector,
 * before its record is). Runs started by another gateway are folded as before.
 */
@Injectable()
export class CreatedRuns {
  private readonly records = new Map<string, Promise<Versioned<Run> | undefined>>();

  /**
   * Called before a start writes anything; the start calls `done` with the record it stored, or
   * with nothing (someone else stored it first, or the start failed).
   */
  starting(runId: string): (record?: Versioned<Run>) => void {
    let done!: (record?: Versioned<Run>) => void;
    this.records.set(runId, new Promise((resolve) => (done = resolve)));
    if (this.records.size > KEPT) this.records.delete(this.records.keys().next().value!);
    return done;
  }

  /** The record this gateway stored for the run, once; undefined when it stored none (or the start took too long). */
  async take(runId: string): Promise<Versioned<Run> | undefined> {
    const record = this.records.get(runId);
    if (!record) return undefined;
    this.records.delete(runId);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), WAIT_MS)));
    return Promise.race([record, late]).finally(() => clearTimeout(timer));
  }
}
