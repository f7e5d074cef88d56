import { MESSAGE_VERSION, type RunEnd, type RunStatus, type StepEnded, type StepMessage, type StepOutput } from '@conveyor/contracts';

/** How the step that a message asked for ended, as far as the run is concerned. */
export type StepOutcome =
  | { status: 'succeeded'; output: StepOutput }
  | { status: 'failed'; output: StepOutput }
  /** The run was cancelled while (or before) this step ran. */
  | { status: 'cancelled'; message: string; failFast?: boolean };

export interface HandOff {
  /** The next step to publish, when there is one. */
  next?: StepMessage;
  /** The run's final state, when this was its last step. */
  final?: { status: Extract<RunStatus, 'succeeded' | 'failed' | 'cancelled'>; message?: string };
  /** Indexes of steps that will never run (skipped after a failure or a cancel). */
  skipped: number[];
}

/**
 * Decides what follows a step: the next normal step, or, once a step failed for good or
 * the run was cancelled, the next `always` step in cleanup mode, and finally the run's end.
 * Pure, so that every driver hands on in exactly the same way.
 */
export function planHandOff(msg: StepMessage, outcome: StepOutcome): HandOff {
  const steps = msg.pipeline.steps;
  const i = msg.stepIndex;
  const step = steps[i];
  const outputs = { ...msg.outputs };
  if (outcome.status !== 'cancelled') outputs[step.id] = outcome.output;
  const base = { ...msg, outputs };

  if (msg.mode === 'normal' && outcome.status === 'succeeded') {
    if (i + 1 < steps.length) return { next: { ...base, stepIndex: i + 1 }, skipped: [] };
    return { final: { status: 'succeeded' }, skipped: [] };
  }

  // From here on only cleanup steps run.
  const runOutcome =
    msg.mode === 'cleanup'
      ? msg.outcome!
      : outcome.status === 'cancelled'
        ? { status: 'cancelled' as const, stepId: step.id, message: outcome.message }
        : { status: 'failed' as const, stepId: step.id, message: failureMessage(step.name || step.id, outcome.output) };
  // Leaving normal mode: every later normal step will never run.
  const skipped: number[] = [];
  if (msg.mode === 'normal') for (let j = i + 1; j < steps.length; j++) if (!steps[j].always) skipped.push(j);
  const cleanup = steps.findIndex((s, j) => j > i && s.always);
  if (cleanup >= 0) return { next: { ...base, stepIndex: cleanup, mode: 'cleanup', outcome: runOutcome }, skipped };
  return { final: { status: runOutcome.status, message: runOutcome.message }, skipped };
}

function failureMessage(stepName: string, output: StepOutput): string {
  return `step "${stepName}" failed${output.message ? `: ${output.message}` : ''}`;
}

/** What a hand-off writes: one record of the run's log that is both the step's outcome and what follows it. */
export type Transition = { kind: 'work'; msg: StepMessage } | { kind: 'end'; end: RunEnd };

/** Who ended the step, for the record: the agent that ran it, or nobody (a skipped step, a step given up by the gateway). */
export interface EndedBy {
  attempt: number;
  agent?: string;
  machine?: string;
  durationMs?: number;
  at: string;
  /** `skipped`: the step never ran (the run was stopping when it came up). */
  as?: 'skipped';
  /** The step released the run's build machine (see HandleStepOptions.releasesMachine): what follows is not pinned. */
  released?: boolean;
}

/**
 * The single record that hands a run on from `msg`'s step: the next step's work carrying
 * how this step ended (`from`) and which steps will never run, or the run's end. Stored
 * whole or not at all, so a run can never be left with a finished step and no next work.
 */
export function planTransition(msg: StepMessage, outcome: StepOutcome, by: EndedBy): Transition {
  const plan = planHandOff(msg, outcome);
  const from = stepEnded(msg, outcome, by);
  const skipped = plan.skipped.length ? { skipped: plan.skipped } : {};
  if (plan.next) return { kind: 'work', msg: { ...unpinnedIf(plan.next, by.released && !by.as), from, ...skipped } };
  const end: RunEnd = { v: MESSAGE_VERSION, kind: 'end', runId: msg.runId, status: plan.final!.status, ...strip({ message: plan.final!.message }), from, ...skipped, at: by.at };
  return { kind: 'end', end };
}

/**
 * How `msg`'s step ended, as a record of its run says it (a line's next work or end carries it
 * as `from`; a graph's `done` record is it): its outcome, who ran it, and the machine the run was
 * pinned to then.
 */
export function stepEnded(msg: StepMessage, outcome: StepOutcome, by: EndedBy): StepEnded {
  const step = msg.pipeline.steps[msg.stepIndex];
  const own = outcome.status === 'cancelled' ? { message: outcome.message } : { message: outcome.output.message, data: outcome.output.data };
  return {
    stepIndex: msg.stepIndex,
    stepId: step.id,
    driver: step.driver,
    attempt: by.attempt,
    status: by.as ?? outcome.status,
    ...strip(own),
    ...(by.as ? {} : strip({ agent: by.agent, machine: by.machine, durationMs: by.durationMs, pin: by.released ? undefined : msg.machine })),
    ...(by.released && !by.as ? { released: true as const } : {}),
    at: by.at,
  };
}

function unpinnedIf(msg: StepMessage, release: boolean | undefined): StepMessage {
  if (!release || msg.machine === undefined) return msg;
  const { machine: _pin, ...rest } = msg;
  return rest;
}

/** The run's end right after `msg`'s step, skipping its cleanup: for when not even the cleanup's work can be stored. */
export function endOnly(msg: StepMessage, outcome: StepOutcome, by: EndedBy): Transition {
  const alone: StepMessage = { ...msg, outputs: {}, resource: { ...msg.resource, spec: {}, metadata: {} }, pipeline: { ...msg.pipeline, steps: msg.pipeline.steps.map((s) => ({ ...s, always: false, config: undefined })) } };
  return planTransition(alone, outcome, by);
}

/** `o` without its undefined fields (records carry no `"key": null` nor absent-but-present keys). */
export function strip<T extends Record<string, unknown>>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/**
 * Message ids of a run's records. They identify a writer's own record when its publish is
 * retried: a retry that finds the run's log moved on looks at the record at its end, and the
 * same id there means the first try was stored.
 */
export const MsgIds = {
  /** The work of a step: at most once per step and mode of a run (a cleanup run of a step is another record). */
  work: (runId: string, stepIndex: number, mode: string) => `${runId}.${stepIndex}.${mode}`,
  /** One agent's record about one delivery of a step (a released attempt is claimed again under the same number, by another delivery). */
  stepRecord: (runId: string, stepIndex: number, kind: string, attempt: number, agent: string, delivery: number) => `${runId}.${stepIndex}.${kind}.${attempt}.${agent}.${delivery}`,
  end: (runId: string) => `${runId}.end`,
  /** The end of a graph's step by one writer (an agent's attempt, or the gateway): its `done` record. */
  stepEnd: (runId: string, stepIndex: number, attempt: number, writer: string, at: string) => `${runId}.${stepIndex}.done.${attempt}.${writer}.${at}`,
};
