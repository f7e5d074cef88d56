import { conditionInputs, evaluateCondition } from './conditions';
import { strip } from './hand-off';
import { MESSAGE_VERSION, type RunEnd, type StepDone, type StepEnded, type StepMessage, type StepOutput } from '@conveyor/contracts';

/**
 * Pipelines as graphs, the pure part: which steps a step needs, whether a pipeline's graph is
 * sound, and what follows when a step ends (the records that a step's end leads to). The run
 * log (libs/run-log) reads a run's state and writes what this plans.
 */

/** What the graph needs of a step. */
export interface GraphStep {
  id: string;
  /** Runs once its needs ended, whatever their outcome (Tekton's `finally`). */
  always?: boolean;
  /** Ids of the steps it waits for; absent: the step before it; `[]`: none. */
  needs?: string[];
  /** A matrix step's expansion: the step it expands, and how many of them may run at once. */
  matrixOf?: string;
  maxParallel?: number;
  /** On which outcome so far it runs (`success` by default; `always` is `always: true`). */
  when?: { status?: Array<'success' | 'failure' | 'always'>; expr?: string };
  /** Carried over from an earlier run (a re-run of what failed): ends at once as it ended there. */
  reused?: unknown;
  /** A person's decision: its work waits for them, not for a driver. */
  approval?: boolean;
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
  /** Why a step is skipped, when it is its own `when` (otherwise a need that did not succeed, or the run's stop). */
  reasons: Map<number, string>;
  /** Steps that fail without running: their condition could not be evaluated (the reason). */
  failed: Map<number, string>;
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
 *    skipped, or the run is stopping (so is one whose work waits unstarted); skips propagate
 *    to its dependents.
 *  - The run stops on a failure when `failFast` (the default), or when it was cancelled: normal
 *    steps still running are cancelled, and only `always` steps start from then on.
 *  - The run ends when every step ended: cancelled if it was, failed if a step failed, else succeeded.
 */
export function planGraph(
  steps: readonly GraphStep[],
  needs: readonly number[][],
  states: readonly GraphStepState[],
  opts: { failFast: boolean; cancelled?: boolean; condition?: (i: number, states: readonly GraphStepState[]) => { value: boolean } | { error: string } },
): GraphPlan {
  const next = [...states];
  const plan: GraphPlan = { ready: [], skipped: [], cancel: [], reasons: new Map(), failed: new Map() };
  const skip = (i: number, reason?: string) => {
    next[i] = 'skipped';
    plan.skipped.push(i);
    if (reason) plan.reasons.set(i, reason);
  };
  for (let changed = true; changed; ) {
    changed = false;
    next.forEach((state, i) => {
      // Read at each step: a condition that fails earlier in this pass is a failure like any other.
      const failing = next.some((s) => s === 'failed');
      const stopping = !!opts.cancelled || (failing && opts.failFast);
      const statuses = statusesOf(steps[i]);
      const finalizer = statuses.includes('always') || statuses.includes('failure');
      // Work stored but not started is skipped too once the run stops (its own end supersedes it).
      if (state === 'ready' && stopping && !finalizer) {
        skip(i);
        changed = true;
        return;
      }
      if (state !== 'waiting') return;
      const own = needs[i].map((j) => next[j]);
      if (!finalizer && (stopping || own.some((s) => s === 'failed' || s === 'cancelled' || s === 'skipped'))) {
        skip(i);
        changed = true;
        return;
      }
      const before = finalizer ? ancestorsOf(needs, i) : needs[i];
      if (!before.every((j) => hasEnded(next[j])) || heldBack(steps, next, i)) return;
      // What it waits for ended: the outcome so far, then its expression, decide. `success`: all of
      // it succeeded; `failure`: a step of the run failed.
      const succeeded = !opts.cancelled && before.every((j) => next[j] === 'succeeded');
      const byStatus = statuses.includes('always') || (statuses.includes('failure') && failing) || (statuses.includes('success') && succeeded);
      if (!byStatus) {
        const why = statuses.includes('success') && !succeeded ? (opts.cancelled ? 'the run was cancelled' : 'not every step before it succeeded') : 'no step of the run failed';
        skip(i, `when.status is [${statuses.join(', ')}] and ${why}`);
        changed = true;
        return;
      }
      const c = steps[i].when?.expr && opts.condition ? opts.condition(i, next) : { value: true };
      if ('error' in c) {
        next[i] = 'failed';
        plan.failed.set(i, `when.expr could not be evaluated: ${c.error}`);
        changed = true;
      } else if (!c.value) {
        skip(i, `when.expr is false: ${steps[i].when!.expr}`);
        changed = true;
      } else {
        next[i] = 'ready';
        plan.ready.push(i);
      }
    });
  }
  const stopping = !!opts.cancelled || (next.some((s) => s === 'failed') && opts.failFast);
  if (stopping) next.forEach((s, i) => s === 'running' && !steps[i].always && !statusesOf(steps[i]).includes('failure') && plan.cancel.push(i));
  if (next.every(hasEnded)) plan.end = opts.cancelled ? 'cancelled' : next.some((s) => s === 'failed') ? 'failed' : next.some((s) => s === 'cancelled') ? 'cancelled' : 'succeeded';
  return plan;
}

/** On which outcomes so far a step runs: `always: true` is `always`; the default is `success`. */
function statusesOf(step: GraphStep): Array<'success' | 'failure' | 'always'> {
  return step.always ? ['always'] : (step.when?.status ?? ['success']);
}

/** A matrix expansion waits while `maxParallel` of its siblings are ready or running: one of them ending readies it. */
function heldBack(steps: readonly GraphStep[], states: readonly GraphStepState[], i: number): boolean {
  const { matrixOf, maxParallel } = steps[i];
  if (!matrixOf || !maxParallel) return false;
  return states.filter((s, j) => steps[j].matrixOf === matrixOf && (s === 'ready' || s === 'running')).length >= maxParallel;
}

/** Every step `i` needs, directly or through others, nearest first (breadth first, needs in order). */
function ancestorsOf(needs: readonly number[][], i: number): number[] {
  const out: number[] = [];
  const queue = [...needs[i]];
  while (queue.length) {
    const j = queue.shift()!;
    if (out.includes(j)) continue;
    out.push(j);
    queue.push(...needs[j]);
  }
  return out;
}

/** A straight line (every step needs the one before it): runs as it always did, one record per hand-off. */
export function isLine(steps: readonly GraphStep[]): boolean {
  // A condition is planned by the graph's planner (a line's hand-off knows none).
  return steps.every((s) => !s.when && !s.reused && !s.approval) && steps.every((s, i) => s.needs === undefined || (i === 0 ? s.needs.length === 0 : s.needs.length === 1 && s.needs[0] === steps[i - 1].id));
}

/** Where one step of a run stands, as its own records say (see RunLog.graph). */
export interface StepView {
  state: GraphStepState;
  /** Its end, once it ended. */
  done?: StepDone;
  /** Stream sequence of its end (orders failures: the first one names the run's). */
  doneSeq?: number;
}

/** A record that follows from a graph run's state: a step's end (its own, or a skip), a readied step's work, or the run's end. */
export type GraphRecord = { kind: 'done'; done: StepDone } | { kind: 'work'; msg: StepMessage } | { kind: 'end'; end: RunEnd };

export interface GraphFollowUp {
  /** Ends of skipped steps, then work of readied steps, then the run's end: each written once, fenced on its own step (or the run's end). */
  records: GraphRecord[];
  /** Running normal steps the run's stop is to abort (through a stop order). */
  cancel: number[];
  /** The run stops because a step failed and the pipeline fails fast (not a user's cancel), with steps still running. */
  failFast: boolean;
  /** Why the run is stopping (its first failure, or a user's cancel), once it is. */
  stop?: StepMessage['outcome'];
  /** A step failed without running (its condition): what follows from that is planned by settling again. */
  again?: true;
}

/**
 * What follows from a graph run's state, as its log shows it: the `done` of every step to skip,
 * the work of every step whose needs have ended (with the outputs and machine pin of what ran
 * before), and the run's end when every step ended. Pure and idempotent: every writer that read
 * the same log plans the same records, and each record is written fenced on its own step's
 * records (work only where the step has none, a skip only on the record the writer saw, the end
 * only once), so a step is readied once however many writers plan it. A writer plans after its
 * own step's end is stored, so of two steps ending at once the later reader sees both.
 * `template` is any message of the run (its pipeline, resource, creation time).
 */
export function planGraphFollowUp(template: StepMessage, steps: readonly StepView[], at: string): GraphFollowUp {
  const pipeline = template.pipeline;
  const { needs } = resolveNeeds(pipeline.steps);
  const views: StepView[] = [...steps];
  const records: GraphRecord[] = [];
  // A re-run's steps carried over from the run it re-runs end at once, as they ended there.
  pipeline.steps.forEach((s, j) => {
    if (!s.reused || views[j].state !== 'waiting') return;
    const from: StepEnded = { stepIndex: j, stepId: s.id, driver: s.driver, attempt: 0, status: 'succeeded', ...(s.reused.message !== undefined ? { message: s.reused.message } : {}), ...(s.reused.data ? { data: s.reused.data } : {}), reusedFrom: s.reused.from, at };
    const done = stepDone(template.runId, from);
    views[j] = { state: 'succeeded', done, doneSeq: 0 };
    records.push({ kind: 'done', done });
  });
  const cancelled = views.some((v) => v.done?.cancelled);
  const failFast = pipeline.failFast !== false;
  const condition = (i: number, states: readonly GraphStepState[]) => {
    const known: Record<string, { status: string; data?: object }> = {};
    pipeline.steps.forEach((s, k) => {
      const data = views[k].done?.from.data;
      known[s.id] = { status: states[k], ...(data ? { data } : {}) };
    });
    return evaluateCondition(pipeline.steps[i].when!.expr!, conditionInputs(template, known));
  };
  const plan = planGraph(pipeline.steps, needs, views.map((v) => v.state), { failFast, cancelled, condition });
  const ends: Array<[number, 'skipped' | 'failed', string | undefined]> = [
    ...[...plan.failed].map(([j, why]) => [j, 'failed', why] as [number, 'failed', string]),
    ...plan.skipped.map((j) => [j, 'skipped', plan.reasons.get(j)] as [number, 'skipped', string | undefined]),
  ];
  for (const [j, status, why] of ends) {
    const s = pipeline.steps[j];
    const done = stepDone(template.runId, { stepIndex: j, stepId: s.id, driver: s.driver, attempt: 0, status, ...(why ? { message: why } : {}), at }, { cancelled });
    views[j] = { state: status, done, doneSeq: Number.MAX_SAFE_INTEGER };
    records.push({ kind: 'done', done });
  }
  const stop = runStop(pipeline.steps, views, cancelled);
  for (const j of plan.ready) {
    const outputs: Record<string, StepOutput> = {};
    views.forEach((v, k) => {
      const f = v.done?.from;
      if (f && (f.status === 'succeeded' || f.status === 'failed')) outputs[pipeline.steps[k].id] = { success: f.status === 'succeeded', ...strip({ message: f.message, data: f.data, agent: f.agent, machine: f.machine }) };
    });
    const machine = pinOf(needs, views, j);
    const msg: StepMessage = {
      v: MESSAGE_VERSION,
      runId: template.runId,
      pipeline,
      resource: template.resource,
      stepIndex: j,
      mode: stop ? 'cleanup' : 'normal',
      ...(stop ? { outcome: stop } : {}),
      outputs,
      ...(machine ? { machine } : {}),
      createdAt: template.createdAt,
      ...(template.traceparent ? { traceparent: template.traceparent } : {}),
    };
    records.push({ kind: 'work', msg });
  }
  if (plan.end) {
    const message = plan.end === 'succeeded' ? undefined : stop?.message;
    records.push({ kind: 'end', end: { v: MESSAGE_VERSION, kind: 'end', runId: template.runId, status: plan.end, ...(message ? { message } : {}), at } });
  }
  return { records, cancel: plan.cancel, failFast: !cancelled && failFast && plan.cancel.length > 0, ...(stop ? { stop } : {}), ...(plan.failed.size ? { again: true } : {}) };
}

/** A step's `done`, as its writer records it: how it ended, the machine the run was pinned to, and whether a user's cancel ended it. */
export function stepDone(runId: string, from: StepEnded, opts: { pin?: string; cancelled?: boolean } = {}): StepDone {
  return { v: MESSAGE_VERSION, kind: 'done', runId, from, ...(opts.pin ? { pin: opts.pin } : {}), ...(opts.cancelled ? { cancelled: true as const } : {}), at: from.at };
}

/** Why the run is stopping (a user's cancel, or its first failed step), or undefined while it is not. */
function runStop(steps: StepMessage['pipeline']['steps'], views: readonly StepView[], cancelled: boolean): StepMessage['outcome'] {
  if (cancelled) return { status: 'cancelled', message: 'the run was cancelled' };
  let first: { j: number; seq: number } | undefined;
  views.forEach((v, j) => {
    if (v.state === 'failed' && (!first || (v.doneSeq ?? 0) < first.seq)) first = { j, seq: v.doneSeq ?? 0 };
  });
  if (!first) return undefined;
  const s = steps[first.j];
  const m = views[first.j].done?.from.message;
  return { status: 'failed', stepId: s.id, message: `step "${s.name || s.id}" failed${m ? `: ${m}` : ''}` };
}

/**
 * The build machine a step must run on: the pin its nearest ended ancestor carried. Once an
 * ancestor released the machine (container-stop removed what was there), only a pin made after
 * that release (by a step that follows it, such as a second container-start) counts: the pins of
 * steps before or beside it point at what is gone.
 */
function pinOf(needs: readonly number[][], views: readonly StepView[], i: number): string | undefined {
  const ancestors = ancestorsOf(needs, i);
  const releases = ancestors.filter((j) => views[j].done?.from.released);
  for (const j of ancestors) {
    const pin = views[j].done?.pin;
    if (!pin) continue;
    if (releases.length && !releases.some((r) => ancestorsOf(needs, j).includes(r))) continue;
    return pin;
  }
  return undefined;
}

/** Steps `i` needs, nearest first: where a step looks for an earlier driver's output. */
export function ancestorsNearestFirst(steps: readonly GraphStep[], i: number): number[] {
  return ancestorsOf(resolveNeeds(steps).needs, i);
}

/** The steps a run starts with (those that need none), with their first work. */
export function graphRoots(steps: readonly GraphStep[]): number[] {
  return resolveNeeds(steps).needs.flatMap((n, i) => (n.length ? [] : [i]));
}
