/** Headers that travel with every step message and event, so the NATS CLI shows them without decoding JSON. */
export const Headers = {
  RunId: 'Conveyor-Run-Id',
  Pipeline: 'Conveyor-Pipeline',
  Step: 'Conveyor-Step',
  StepIndex: 'Conveyor-Step-Index',
  Driver: 'Conveyor-Driver',
  Resource: 'Conveyor-Resource',
  Mode: 'Conveyor-Mode',
  /** On step events: the attempt they are about (a step message's attempt is its JetStream delivery count). */
  Attempt: 'Conveyor-Attempt',
  /** JetStream de-duplication id. */
  MsgId: 'Nats-Msg-Id',
  /** On dead letters. */
  Reason: 'Conveyor-Reason',
  Agent: 'Conveyor-Agent',
  /** W3C trace context (when tracing is on): on step work, the span that wrote it (see libs/tracing). */
  TraceParent: 'traceparent',
} as const;
