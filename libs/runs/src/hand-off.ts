import type { RunStatus, StepMessage, StepOutput } from '@conveyor/contracts';

/** How the step that a message asked for ended, as far as the run is concerned. */
export type StepOutcome =
  | { status: 'succeeded'; output: StepOutput }
  | { status: 'failed'; output: StepOutput }
  /** The run was cancelled while (or before) this step ran. */
  | { status: 'cancelled'; message: string };

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

/** Deterministic JetStream message ids: a re-run of the same hand-off is dropped as a duplicate. */
export const MsgIds = {
  step: (runId: string, stepIndex: number) => `${runId}.step.${stepIndex}`,
  stepEvent: (runId: string, stepIndex: number, attempt: number, kind: string) => `${runId}.${stepIndex}.${attempt}.${kind}`,
  runEvent: (runId: string, kind: string) => `${runId}.run.${kind}`,
  /**
   * The gateway giving up on a step no agent could take. Its own id: an agent that comes back
   * and runs the step (a cleanup step) records its outcome under the step's ids, never
   * dropped as a duplicate of this.
   */
  stepGivenUp: (runId: string, stepIndex: number) => `${runId}.${stepIndex}.given-up`,
};

