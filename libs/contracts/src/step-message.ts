import { MESSAGE_VERSION, type StepMessage } from './messages';
import { RUN_ID_PATTERN, isName, STEP_ID_PATTERN } from './names';

/** One decoder for every message (made once: it is on every step's path). Invalid UTF-8 throws. */
export const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Decodes a step message received from NATS. Anything else found on a step subject
 * (garbage, truncated JSON, a hand-made payload) is reported with a reason, so the driver
 * can terminate and dead-letter it instead of retrying it forever.
 */
export function decodeStepMessage(data: Uint8Array): Decoded<StepMessage> {
  let raw: unknown;
  try {
    raw = JSON.parse(strictUtf8.decode(data));
  } catch (err) {
    return { ok: false, reason: `payload is not UTF-8 JSON: ${(err as Error).message}` };
  }
  if (!isObject(raw)) return { ok: false, reason: 'payload is not a JSON object' };
  if (raw.v !== MESSAGE_VERSION) return { ok: false, reason: `unsupported message version ${JSON.stringify(raw.v)}` };
  if (typeof raw.runId !== 'string' || !RUN_ID_PATTERN.test(raw.runId)) return { ok: false, reason: 'runId is missing or malformed' };
  const p = raw.pipeline;
  if (!isObject(p) || typeof p.name !== 'string' || !Array.isArray(p.steps) || p.steps.length === 0) {
    return { ok: false, reason: 'pipeline snapshot is missing or malformed' };
  }
  for (const [i, s] of p.steps.entries()) {
    if (!isObject(s) || typeof s.id !== 'string' || !STEP_ID_PATTERN.test(s.id) || !isName(s.driver)) {
      return { ok: false, reason: `pipeline step ${i} is malformed` };
    }
  }
  if (!Number.isInteger(raw.stepIndex) || (raw.stepIndex as number) < 0 || (raw.stepIndex as number) >= p.steps.length) {
    return { ok: false, reason: 'stepIndex is out of range' };
  }
  if (raw.mode !== 'normal' && raw.mode !== 'cleanup') return { ok: false, reason: 'mode must be "normal" or "cleanup"' };
  if (raw.mode === 'cleanup' && (!isObject(raw.outcome) || (raw.outcome.status !== 'failed' && raw.outcome.status !== 'cancelled'))) {
    return { ok: false, reason: 'a cleanup message needs an outcome of "failed" or "cancelled"' };
  }
  const r = raw.resource;
  if (!isObject(r) || typeof r.type !== 'string' || typeof r.name !== 'string' || !Number.isInteger(r.version) || !isObject(r.spec)) {
    return { ok: false, reason: 'resource is missing or malformed' };
  }
  if (!isObject(raw.outputs)) return { ok: false, reason: 'outputs must be an object' };
  if (raw.machine !== undefined && !isName(raw.machine)) return { ok: false, reason: 'machine is malformed' };
  return { ok: true, value: raw as unknown as StepMessage };
}
