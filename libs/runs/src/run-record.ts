import {
  MESSAGE_VERSION,
  type Pipeline,
  type Resource,
  type Run,
  type RunEvent,
  type StepMessage,
  type StepStatus,
  isTerminalRunStatus,
} from '@conveyor/contracts';

/** A new run of `pipeline` for one version of `resource`: queued at its first step. */
export function newRun(id: string, pipeline: Pipeline, resource: Resource, now = new Date()): Run {
  return {
    id,
    pipeline: { name: pipeline.name, resource: pipeline.resource, steps: structuredClone(pipeline.steps) },
    resource: { type: resource.resource, name: resource.name, version: resource.version },
    status: 'queued',
    steps: pipeline.steps.map((s) => ({
      id: s.id,
      name: s.name,
      driver: s.driver,
      always: s.always === true,
      status: 'pending',
      attempts: 0,
    })),
    cancelRequested: false,
    createdAt: now.toISOString(),
  };
}

/** The message that starts a run: its first step, carrying everything a driver needs. */
export function firstStepMessage(run: Run, resource: Resource): StepMessage {
  return {
    v: MESSAGE_VERSION,
    runId: run.id,
    pipeline: run.pipeline,
    resource: { type: resource.resource, name: resource.name, version: resource.version, spec: resource.spec, metadata: resource.metadata },
    stepIndex: 0,
    mode: 'normal',
    outputs: {},
    createdAt: run.createdAt,
  };
}

/**
 * Events of one attempt move a step forward: `started`, then one terminal kind. The order
 * key (attempt, phase) decides which event wins, so folding the same events in any order,
 * or twice, gives the same record: JetStream redelivery and several gateways folding at
 * once are both safe.
 */
const PHASE: Record<string, number> = {
  pending: 0, running: 1, started: 1, retrying: 2, failed: 2, succeeded: 2, cancelled: 2, skipped: 3,
};

const orderKey = (attempt: number, phase: string): number => attempt * 10 + (PHASE[phase] ?? 0);

const TERMINAL_STEP: readonly StepStatus[] = ['succeeded', 'failed', 'skipped', 'cancelled'];

export function applyEvent(run: Run, e: RunEvent): Run {
  const next: Run = { ...run, steps: run.steps.map((s) => ({ ...s })) };
  if (e.scope === 'step') {
    const step = next.steps.find((s) => s.id === e.stepId);
    if (!step) return run;
    const attempt = e.attempt ?? 0;
    const wins = orderKey(attempt, e.kind) >= orderKey(step.attempts, step.status);
    // Agent and machine belong to the latest attempt, whichever of its events comes first.
    if (attempt >= step.attempts) {
      if (e.agent) step.agent = e.agent;
      if (e.machine) step.machine = e.machine;
    }
    step.attempts = Math.max(step.attempts, attempt);
    if (e.kind === 'started' && (!step.startedAt || e.at < step.startedAt)) step.startedAt = e.at;
    if (wins) {
      step.status = e.kind === 'started' ? 'running' : (e.kind as StepStatus);
      // The winning event says everything about the step's message and data.
      if (e.message !== undefined) step.message = e.message;
      else delete step.message;
      if (e.data !== undefined) step.data = e.data;
      else delete step.data;
      if (TERMINAL_STEP.includes(step.status)) step.finishedAt = e.at;
    }
    if (step.startedAt && step.finishedAt) step.durationMs = Date.parse(step.finishedAt) - Date.parse(step.startedAt);
    if (next.status === 'queued' && e.kind === 'started') {
      next.status = 'running';
    }
    if (e.kind === 'started' && (!next.startedAt || e.at < next.startedAt)) next.startedAt = e.at;
    return next;
  }
  // Run-scoped events.
  if (e.kind === 'queued' || isTerminalRunStatus(next.status)) return next.status === run.status ? run : next;
  if (e.kind === 'succeeded' || e.kind === 'failed' || e.kind === 'cancelled') {
    next.status = e.kind;
    next.finishedAt = e.at;
    if (e.message !== undefined) next.message = e.message;
    next.durationMs = Date.parse(e.at) - Date.parse(next.createdAt);
    for (const s of next.steps) if (s.status === 'pending') s.status = 'skipped';
  }
  return next;
}

