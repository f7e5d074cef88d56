/**
 * Pipelines as graphs (issue 11), the pure part: which steps a step needs, whether a pipeline's
 * graph is sound, and what follows when steps end. Not wired in yet (branch `graphs`): the run
 * log's records and the SDK's hand-off still move runs along a line.
 */

/** What the graph needs of a step. */
export interface GraphStep {
  id: string;
  /** Runs once its needs ended, whatever their outcome (Tekton's `finally`). */
  always?: boolean;
  /** Ids of the steps it waits for; absent: the step before it; `[]`: none. */
  needs?: string[];
}

export interface GraphProblem {
  stepId: string;
  message: string;
}

/**
 * Each step's needs as step indexes. A step without `needs` needs the step before it, so a
 * pipeline written as a list means what it always meant. Unknown ids, a step needing itself,
 * a need named twice and cycles are problems, each naming its step.
 */
export function resolveNeeds(steps: readonly GraphStep[]): { needs: number[][]; problems: GraphProblem[] } {
  const index = new Map(steps.map((s, i) => [s.id, i]));
  const problems: GraphProblem[] = [];
  const needs = steps.map((s, i) => {
    if (s.needs === undefined) return i === 0 ? [] : [i - 1];
    const out: number[] = [];
    for (const id of s.needs) {
      const j = index.get(id);
      if (j === undefined) problems.push({ stepId: s.id, message: `needs "${id}", which is not a step of this pipeline` });
      else if (j === i) problems.push({ stepId: s.id, message: 'needs itself' });
      else if (out.includes(j)) problems.push({ stepId: s.id, message: `needs "${id}" twice` });
      else out.push(j);
    }
    return out;
  });
  if (!problems.length) for (const id of stepsOnCycles(needs).map((i) => steps[i].id)) problems.push({ stepId: id, message: 'is on a cycle of needs' });
  return { needs, problems };
}

/** Steps that can never start because they (transitively) need themselves (Kahn's algorithm leaves them). */
function stepsOnCycles(needs: number[][]): number[] {
  const waiting = needs.map((n) => n.length);
  const dependents = needs.map(() => [] as number[]);
  needs.forEach((n, i) => n.forEach((j) => dependents[j].push(i)));
  const free = waiting.flatMap((w, i) => (w === 0 ? [i] : []));
  while (free.length) {
    for (const d of dependents[free.pop()!]) if (--waiting[d] === 0) free.push(d);
  }
  return waiting.flatMap((w, i) => (w > 0 ? [i] : []));
}

/** Where a step of a run stands. `ready`: its work is stored, no agent started it yet. */
export type GraphStepState = 'waiting' | 'ready' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'skipped';

const ENDED: ReadonlySet<GraphStepState> = new Set(['succeeded', 'failed', 'cancelled', 'skipped']);

export function hasEnded(state: GraphStepState): boolean {
  return ENDED.has(state);
}

export interface GraphPlan {
  /** Steps whose work is to be written now (their needs have all ended). */
  ready: number[];
  /** Steps that will never run. */
  skipped: number[];
  /** Running normal steps to stop: the run is stopping (a failure with failFast, or a cancel). */
  cancel: number[];
  /** The run's end, once every step has ended. */
  end?: 'succeeded' | 'failed' | 'cancelled';
}

/**
 * What follows from the states of a run's steps (after the step that just ended was set to its
 * outcome). Pure and idempotent: planned again from the same states it gives the same answer,
 * so writers racing on a run (fenced on its log) agree on what the winner wrote.
 *  - A waiting step is ready when its needs ended: another only if they all succeeded and the
 *    run is not stopping; an `always` step whatever they did, and only once every step it needs,
 *    even through a skipped one, ended (cleanup never runs beside what it cleans up after).
 *  - A waiting normal step is skipped as soon as one of its needs failed, was cancelled or
 *    skipped, or the run is stopping; skips propagate to its dependents.
 *  - The run stops on a failure when `failFast` (the default), or when it was cancelled: normal
 *    steps still running are cancelled, and only `always` steps start from then on.
 *  - The run ends when every step ended: cancelled if it was, failed if a step failed, else succeeded.
 */
export function planGraph(steps: readonly GraphStep[], needs: readonly number[][], states: readonly GraphStepState[], opts: { failFast: boolean; cancelled?: boolean }): GraphPlan {
  const next = [...states];
  const failed = next.some((s) => s === 'failed');
  const stopping = !!opts.cancelled || (failed && opts.failFast);
  const plan: GraphPlan = { ready: [], skipped: [], cancel: [] };
  for (let changed = true; changed; ) {
    changed = false;
    next.forEach((state, i) => {
      if (state !== 'waiting') return;
      const own = needs[i].map((j) => next[j]);
      const always = !!steps[i].always;
      if (!always && (stopping || own.some((s) => s === 'failed' || s === 'cancelled' || s === 'skipped'))) {
        next[i] = 'skipped';
        plan.skipped.push(i);
        changed = true;
      } else if (always ? ancestorsOf(needs, i).every((j) => hasEnded(next[j])) : own.every(hasEnded)) {
        next[i] = 'ready';
        plan.ready.push(i);
      }
    });
  }
  if (stopping) next.forEach((s, i) => s === 'running' && !steps[i].always && plan.cancel.push(i));
  if (next.every(hasEnded)) plan.end = opts.cancelled ? 'cancelled' : next.some((s) => s === 'failed') ? 'failed' : next.some((s) => s === 'cancelled') ? 'cancelled' : 'succeeded';
  return plan;
}

/** Every step `i` needs, directly or through others. */
function ancestorsOf(needs: readonly number[][], i: number): number[] {
  const seen = new Set<number>();
  const todo = [...needs[i]];
  while (todo.length) {
    const j = todo.pop()!;
    if (!seen.has(j)) {
      seen.add(j);
      todo.push(...needs[j]);
    }
  }
  return [...seen];
}
