import { expandMatrices } from './matrix';
import {
  MESSAGE_VERSION,
  type JsonObject,
  type Pipeline,
  type PipelineSnapshot,
  type TriggerOrigin,
  type Resource,
  type ResourceRef,
  type Run,
  type RunEvent,
  type RunRecord,
  type StepEnded,
  type StepMessage,
  type StepStatus,
  isTerminalRunStatus,
} from '@conveyor/contracts';
import { resolveNeeds } from './graph';

/** A new run of `pipeline` for one version of `resource`: queued at its first step. */
export function newRun(id: string, pipeline: Pipeline, resource: Resource, now = new Date()): Run {
  // A run's pipeline is the definition with its matrices expanded: what its agents run and its record shows.
  return runRecord(id, { ...pipeline, steps: expandMatrices(pipeline.steps).steps }, { type: resource.resource, name: resource.name, version: resource.version }, now.toISOString(), resource.trigger);
}

/**
 * The first step's message a run of `pipeline` for `resource` would start with, without making
 * the run's record (no graph analysis, no copies): to know its size before anything is stored.
 */
export function firstStepMessageOf(pipeline: Pipeline, resource: Resource): StepMessage {
  return firstStepMessage({ id: '0'.repeat(26), pipeline: pipelineSnapshot({ ...pipeline, steps: expandMatrices(pipeline.steps).steps }), createdAt: new Date(0).toISOString() }, resource);
}

/** What a run's record and its messages carry of its pipeline. */
function pipelineSnapshot(pipeline: PipelineSnapshot): PipelineSnapshot {
  return {
    name: pipeline.name,
    resource: pipeline.resource,
    steps: pipeline.steps,
    ...(pipeline.failFast !== undefined ? { failFast: pipeline.failFast } : {}),
    ...(pipeline.notify?.length ? { notify: pipeline.notify } : {}),
  };
}

/**
 * The record of a run as its first step's work describes it: what the gateway's projector
 * makes when it finds a run's log but no record (the gateway that started it stopped
 * between the two writes).
 */
export function runFromFirstWork(msg: StepMessage): Run {
  return runRecord(msg.runId, msg.pipeline, { type: msg.resource.type, name: msg.resource.name, version: msg.resource.version }, msg.createdAt, msg.resource.trigger);
}

function runRecord(id: string, pipeline: PipelineSnapshot, resource: ResourceRef, createdAt: string, trigger?: TriggerOrigin): Run {
  const { needs } = resolveNeeds(pipeline.steps);
  return {
    id,
    pipeline: structuredClone(pipelineSnapshot(pipeline)),
    resource,
    ...(trigger ? { trigger } : {}),
    status: 'queued',
    steps: pipeline.steps.map((s, i) => ({
      id: s.id,
      name: s.name,
      driver: s.driver,
      always: s.always === true,
      needs: needs[i].map((j) => pipeline.steps[j].id),
      ...(s.matrixOf ? { matrixOf: s.matrixOf, matrix: (s.config?.matrix ?? {}) as JsonObject } : {}),
      status: 'pending',
      attempts: 0,
    })),
    cancelRequested: false,
    createdAt,
  };
}

/**
 * A pipeline as a run of it ran (its snapshot, matrices expanded), to start another run of it
 * (a re-run, or a run that waited for its concurrency group); `steps` replaces the snapshot's.
 */
export function pipelineOfRun(run: Pick<Run, 'pipeline'>, steps = run.pipeline.steps, now = new Date().toISOString()): Pipeline {
  const p = run.pipeline;
  return { name: p.name, description: '', resource: p.resource, steps, ...(p.failFast !== undefined ? { failFast: p.failFast } : {}), ...(p.notify ? { notify: p.notify } : {}), createdAt: now, updatedAt: now };
}

/** The message that starts a run: its first step, carrying everything a driver needs. */
export function firstStepMessage(run: Pick<Run, 'id' | 'pipeline' | 'createdAt'>, resource: Resource): StepMessage {
  return {
    v: MESSAGE_VERSION,
    runId: run.id,
    pipeline: run.pipeline,
    resource: { type: resource.resource, name: resource.name, version: resource.version, spec: resource.spec, metadata: resource.metadata, ...(resource.trigger ? { trigger: resource.trigger } : {}) },
    stepIndex: 0,
    mode: 'normal',
    outputs: {},
    createdAt: run.createdAt,
  };
}

/**
 * The facts a record of a run's log says, in the form the fold applies: a work record says
 * how the step before it ended and which steps were skipped; a claim, that an attempt
 * started; the end, how the last step and the run ended. `seq` is the record's stream
 * sequence, `storedAt` when the server stored it.
 */
export function recordEvents(record: RunRecord, seq: number, storedAt?: string): RunEvent[] {
  // Each event is written out in full, not as `{ ...base, more }`: on Node 20 every property
  // defined after a spread costs about a microsecond (13.5 µs a call here, 0.05 µs written out).
  const v = MESSAGE_VERSION;
  const ended = (runId: string, from: StepEnded | undefined, skipped: number[] | undefined, steps: { id: string }[] | undefined): RunEvent[] => {
    const out: RunEvent[] = [];
    if (from) {
      const { stepId, stepIndex, attempt, status, message, data, agent, machine, durationMs, pin, reusedFrom, at } = from;
      out.push({ v, seq, runId, scope: 'step', kind: status, stepId, stepIndex, attempt, message, data, agent, machine, durationMs, pin, reusedFrom, at });
    }
    for (const j of skipped ?? []) {
      const id = steps?.[j]?.id;
      if (id) out.push({ v, seq, runId, scope: 'step', kind: 'skipped', stepId: id, stepIndex: j, attempt: 0, at: from?.at ?? new Date(0).toISOString() });
    }
    return out;
  };
  switch (record.kind) {
    case 'work': {
      const m = record.msg;
      const out = ended(m.runId, m.from, m.skipped, m.pipeline.steps);
      const step = m.pipeline.steps[m.stepIndex];
      // An approval step's work: it waits for a person from now on.
      if (step?.approval) out.push({ v, seq, runId: m.runId, scope: 'step', kind: 'waiting', stepId: step.id, stepIndex: m.stepIndex, attempt: 0, at: storedAt ?? m.createdAt });
      return out;
    }
    case 'done':
      return ended(record.done.runId, record.done.from, undefined, undefined);
    case 'end': {
      const e = record.end;
      // Skipped steps are named by index; the end record does not carry the pipeline, so
      // they are folded by index there (see applyEvent).
      const out = ended(e.runId, e.from, undefined, undefined);
      for (const j of e.skipped ?? []) out.push({ v, seq, runId: e.runId, scope: 'step', kind: 'skipped', stepIndex: j, attempt: 0, at: e.at });
      out.push({ v, seq, runId: e.runId, scope: 'run', kind: e.status, message: e.message, at: e.at });
      return out;
    }
    default: {
      const r = record.record;
      const kind = r.kind === 'claim' || r.kind === 'started' ? 'started' : r.kind === 'retry' ? 'retrying' : 'released';
      return [{ v, seq, runId: r.runId, scope: 'step', kind, stepId: r.stepId, stepIndex: r.stepIndex, attempt: r.attempt, agent: r.agent, machine: r.machine, message: r.message, retryInMs: r.retryInMs, durationMs: r.durationMs, at: r.at }];
    }
  }
}

/**
 * Events of one attempt move a step forward: `started`, then one terminal kind. The order
 * key (attempt, phase, then the record's stream sequence) decides which event wins, so
 * folding the same events in any order, or twice, gives the same record: JetStream
 * redelivery and several gateways folding at once are both safe. A released attempt is
 * started again under the same number: same phase, later record.
 */
const PHASE: Record<string, number> = {
  pending: 1, released: 1, waiting: 1, running: 1, started: 1, retrying: 2, failed: 2, succeeded: 2, cancelled: 2, skipped: 3,
};

const ENDS = ['succeeded', 'failed', 'skipped', 'cancelled'];

const wins = (attempt: number, kind: string, seq: number | undefined, step: { attempts: number; status: string; seq?: number }): boolean => {
  // A step's end beats any start, whatever the attempts say: in a run's log nothing starts a step
  // after its end (a skip has attempt 0, a start recorded beside the log may come later).
  const endsIt = ENDS.includes(kind);
  if (endsIt !== ENDS.includes(step.status)) return endsIt;
  const a = attempt * 10 + (PHASE[kind] ?? 0);
  const b = step.attempts * 10 + (step.status === 'pending' && !step.seq ? 0 : (PHASE[step.status] ?? 0));
  return a !== b ? a > b : (seq ?? 0) >= (step.seq ?? 0);
};

const TERMINAL_STEP: readonly StepStatus[] = ['succeeded', 'failed', 'skipped', 'cancelled'];

export function applyEvent(run: Run, e: RunEvent): Run {
  const next: Run = { ...run, steps: run.steps.map((s) => ({ ...s })) };
  if (e.scope === 'step') {
    const step = e.stepId !== undefined ? next.steps.find((s) => s.id === e.stepId) : next.steps[e.stepIndex ?? -1];
    if (!step) return run;
    const attempt = e.attempt ?? 0;
    // Nothing starts after a run's end (its log refuses it): a start folded after the end is
    // an older record, and must not show the step running again.
    const late = isTerminalRunStatus(next.status) && (e.kind === 'started' || e.kind === 'released' || e.kind === 'retrying');
    // A step that ended stays ended: a start is never what ends a step, and one that comes after
    // its end (a start recorded beside the log, of an attempt the run had moved past) is void.
    const restart = (e.kind === 'started' || e.kind === 'released') && TERMINAL_STEP.includes(step.status);
    const won = !late && !restart && wins(attempt, e.kind, e.seq, step);
    // Agent and machine belong to the latest attempt and, within it, to its latest record (a
    // released attempt is claimed again, maybe by another agent).
    if (attempt > step.attempts || (attempt === step.attempts && (e.seq ?? 0) >= (step.seq ?? 0))) {
      if (e.agent) step.agent = e.agent;
      if (e.machine) step.machine = e.machine;
    }
    if (!late && !restart) step.attempts = Math.max(step.attempts, attempt);
    if (e.kind === 'started' && (!step.startedAt || e.at < step.startedAt)) step.startedAt = e.at;
    if (won) {
      step.status = e.kind === 'started' ? 'running' : e.kind === 'released' ? 'pending' : (e.kind as StepStatus);
      if (e.kind === 'waiting') step.waitingSince = e.at;
      if (e.seq !== undefined) step.seq = e.seq;
      // The winning event says everything about the step's message and data.
      if (e.message !== undefined) step.message = e.message;
      else delete step.message;
      if (e.data !== undefined) step.data = e.data;
      else delete step.data;
      if (TERMINAL_STEP.includes(step.status)) step.finishedAt = e.at;
      if (e.pin) step.pin = e.pin;
      if (e.reusedFrom) step.reusedFrom = e.reusedFrom;
    }
    // A step whose start was not recorded (it ended before its start went out) started its
    // duration before it ended.
    if (won && !step.startedAt && e.durationMs !== undefined && TERMINAL_STEP.includes(step.status)) step.startedAt = new Date(Date.parse(e.at) - e.durationMs).toISOString();
    if (step.startedAt && (!next.startedAt || step.startedAt < next.startedAt)) next.startedAt = step.startedAt;
    if (step.startedAt && step.finishedAt) step.durationMs = Date.parse(step.finishedAt) - Date.parse(step.startedAt);
    // Any attempt under way or ended (a fast step's start may never have been recorded) means the run runs.
    if (next.status === 'queued' && e.kind !== 'skipped' && attempt > 0) {
      next.status = 'running';
    }
    if (e.kind === 'started' && (!next.startedAt || e.at < next.startedAt)) next.startedAt = e.at;
    return next.ending ? end(next, next.ending) : next;
  }
  // Run-scoped events.
  if (isTerminalRunStatus(next.status)) return next.status === run.status ? run : next;
  if (e.kind === 'succeeded' || e.kind === 'failed' || e.kind === 'cancelled') return end(next, { status: e.kind, message: e.message, at: e.at });
  return next;
}

/**
 * Ends the run — once no step shows an attempt under way. Every step a run's log claimed has its outcome
 * in the log before the run's end, but a fold may meet the end first (a record redelivered
 * after a failed write): the end waits in `ending` for the step's outcome, so a run is never
 * shown terminal with a step still running.
 */
function end(run: Run, ending: NonNullable<Run['ending']>): Run {
  // A step an attempt started (running, retrying, or released and waiting) has its outcome still to come.
  if (run.steps.some((s) => s.status === 'running' || s.status === 'retrying' || (s.status === 'pending' && s.attempts > 0))) return { ...run, ending };
  const { ending: _, ...next } = run;
  next.status = ending.status;
  next.finishedAt = ending.at;
  if (ending.message !== undefined) next.message = ending.message;
  next.durationMs = Date.parse(ending.at) - Date.parse(next.createdAt);
  for (const s of next.steps) if (s.status === 'pending') s.status = 'skipped';
  return next;
}
