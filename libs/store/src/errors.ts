import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';

/** The store speaks in domain errors; the gateway maps them to 404 and 409. */
export class NotFoundError extends Error {}
export class ConflictError extends Error {}

export function isWrongRevision(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
