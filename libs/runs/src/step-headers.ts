import { Headers, PROTOCOL_VERSION, type StepMessage } from '@conveyor/contracts';

/**
 * The NATS headers of a step message, so that `nats stream view` and `nats sub` show what a
 * message is for without decoding its JSON. Whoever publishes a step (the gateway for the
 * first one, the SDK for hand-offs) sets the same ones.
 */
export function stepHeaderValues(msg: StepMessage): Record<string, string> {
  const step = msg.pipeline.steps[msg.stepIndex];
  return {
    [Headers.Protocol]: PROTOCOL_VERSION,
    [Headers.RunId]: msg.runId,
    [Headers.Pipeline]: msg.pipeline.name,
    [Headers.Step]: step.id,
    [Headers.StepIndex]: String(msg.stepIndex),
    [Headers.Driver]: step.driver,
    [Headers.Resource]: `${msg.resource.type}/${msg.resource.name}@${msg.resource.version}`,
    [Headers.Mode]: msg.mode,
  };
}
