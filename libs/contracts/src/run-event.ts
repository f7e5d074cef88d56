import { MESSAGE_VERSION, type RunEvent } from './messages';
import { RUN_ID_PATTERN, STEP_ID_PATTERN } from './names';
import { strictUtf8, type Decoded } from './step-message';

const STEP_KINDS = ['started', 'succeeded', 'failed', 'retrying', 'skipped', 'cancelled'];
const RUN_KINDS = ['queued', 'succeeded', 'failed', 'cancelled'];

/**
 * Decodes a run event read from the events stream. Whoever folds events into run records
 * terminates anything this rejects instead of letting it be redelivered for ever.
 */
export function decodeRunEvent(data: Uint8Array): Decoded<RunEvent> {
  let raw: unknown;
  try {
    raw = JSON.parse(strictUtf8.decode(data));
  } catch (err) {
    return { ok: false, reason: `payload is not UTF-8 JSON: ${(err as Error).message}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, reason: 'payload is not a JSON object' };
  const e = raw as Record<string, unknown>;
  if (e.v !== MESSAGE_VERSION) return { ok: false, reason: `unsupported message version ${JSON.stringify(e.v)}` };
  if (typeof e.runId !== 'string' || !RUN_ID_PATTERN.test(e.runId)) return { ok: false, reason: 'runId is missing or malformed' };
  if (typeof e.at !== 'string' || Number.isNaN(Date.parse(e.at))) return { ok: false, reason: '"at" is not a timestamp' };
  if (e.scope === 'run') {
    if (!RUN_KINDS.includes(e.kind as string)) return { ok: false, reason: `unknown run event kind ${JSON.stringify(e.kind)}` };
  } else if (e.scope === 'step') {
    if (!STEP_KINDS.includes(e.kind as string)) return { ok: false, reason: `unknown step event kind ${JSON.stringify(e.kind)}` };
    if (typeof e.stepId !== 'string' || !STEP_ID_PATTERN.test(e.stepId)) return { ok: false, reason: 'stepId is missing or malformed' };
    if (e.attempt !== undefined && (!Number.isInteger(e.attempt) || (e.attempt as number) < 0)) return { ok: false, reason: 'attempt is not a non-negative integer' };
  } else {
    return { ok: false, reason: 'scope must be "step" or "run"' };
  }
  return { ok: true, value: e as unknown as RunEvent };
}
