import type { MsgHdrs } from '@nats-io/transport-node';
import type { PipelineStep, StepMessage } from '@conveyor/contracts';
import { SpanKind, SpanStatusCode, startConsumerSpan, startSpan, type Span } from '@conveyor/tracing';
import type { Written } from './step-records';

/** How an attempt ended, on its span: a step's outcome, or `retry` (failed, tried again), `released` (given back at a shutdown). */
export type AttemptOutcome = 'succeeded' | 'failed' | 'cancelled' | 'retry' | 'released';

/** The span of one attempt of a step by this agent (undefined when tracing is off). */
export function attemptSpan(msg: StepMessage, step: PipelineStep, attempt: number, agent: { id: string; machine: string }, headers: MsgHdrs | undefined, takeover: boolean): Span | undefined {
  return startConsumerSpan(`step ${step.id}`, msg.traceparent, headers, {
    'conveyor.run.id': msg.runId,
    'conveyor.pipeline': msg.pipeline.name,
    'conveyor.step.id': step.id,
    'conveyor.step.index': msg.stepIndex,
    'conveyor.driver': step.driver,
    'conveyor.agent.id': agent.id,
    'conveyor.machine': agent.machine,
    'conveyor.attempt': attempt,
    'conveyor.mode': msg.mode,
    ...(takeover ? { 'conveyor.takeover': true } : {}),
  });
}

/** Records how the attempt ended; a failure (final or retried) marks the span as an error. */
export function attemptEnded(span: Span | undefined, outcome: AttemptOutcome, message?: string): void {
  if (!span) return;
  span.setAttribute('conveyor.step.outcome', outcome);
  if (message) span.setAttribute('conveyor.step.message', message);
  if (outcome === 'failed' || outcome === 'retry') span.setStatus({ code: SpanStatusCode.ERROR, message: message ?? outcome });
}

/** The span of a hand-off, the fenced write that moves the run on: a child of the attempt's span. */
export function handOffSpan(msg: StepMessage, step: PipelineStep, outcome: string): Span | undefined {
  return startSpan(`hand-off ${step.id}`, {
    kind: SpanKind.PRODUCER,
    attributes: { 'conveyor.run.id': msg.runId, 'conveyor.step.id': step.id, 'conveyor.step.outcome': outcome },
  });
}

/** Ends a hand-off's span with what became of the write: stored, refused (the run moved on without it), given up, or not answered in time. */
export function handOffEnded(span: Span | undefined, r: Written | undefined): void {
  if (!span) return;
  span.setAttribute('conveyor.handoff.result', r === undefined ? 'timeout' : r.stored === true ? 'stored' : r.stored === false ? 'refused' : 'gave-up');
  span.end();
}
