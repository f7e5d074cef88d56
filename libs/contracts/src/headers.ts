import { MESSAGE_VERSION } from './messages';

/**
 * The wire protocol's version, `<major>.<minor>` (docs/protocol.md): sent in the
 * `Conveyor-Protocol` header of every record of a run's log. The major is the payloads' `v`;
 * a minor adds only optional fields, which readers ignore when they do not know them.
 */
export const PROTOCOL_VERSION = `${MESSAGE_VERSION}.0`;

/** Headers that travel with every step message and event, so the NATS CLI shows them without decoding JSON. */
export const Headers = {
  /** The protocol version the writer speaks (PROTOCOL_VERSION). */
  Protocol: 'Conveyor-Protocol',
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

/**
 * Why a driver must not act on a message whose `Conveyor-Protocol` header is `value`, or
 * undefined when it may: an absent header (a writer older than the header) is version 1,
 * and only the major must match; a malformed value is refused like an unknown major.
 */
export function protocolProblem(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  const m = /^(\d+)\.(\d+)$/.exec(value);
  if (!m) return `malformed ${Headers.Protocol} header ${JSON.stringify(value)} (expected <major>.<minor>)`;
  if (Number(m[1]) !== MESSAGE_VERSION) return `unsupported protocol major version ${m[1]} (${Headers.Protocol}: ${value}); this agent speaks ${PROTOCOL_VERSION}`;
  return undefined;
}
