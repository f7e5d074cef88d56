import { MESSAGE_VERSION, type RunEnd, type StepDone, type StepMessage, type StepRecord } from './messages';
import { STEP_ID_PATTERN } from './names';
import { decodeStepMessage, type Decoded } from './step-message';
import { strictUtf8 } from './step-message';
import type { RunRecordSubject } from './subjects';

/** A record of a run's log, decoded: what its subject says it is, and its payload. */
export type RunRecord =
  | { kind: 'work'; msg: StepMessage }
  | { kind: 'claim' | 'retry' | 'release' | 'started'; record: StepRecord }
  | { kind: 'done'; done: StepDone }
  | { kind: 'end'; end: RunEnd };

/** The run a record belongs to. */
export function runIdOf(r: RunRecord): string {
  return r.kind === 'work' ? r.msg.runId : r.kind === 'end' ? r.end.runId : r.kind === 'done' ? r.done.runId : r.record.runId;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isTime = (v: unknown): boolean => typeof v === 'string' && !Number.isNaN(Date.parse(v));
const isCount = (v: unknown, min: number): boolean => Number.isInteger(v) && (v as number) >= min;

/**
 * Decodes a record read from a run's log, checking that its payload is about the run and
 * step its subject names. Whoever reads the log (the gateway's projector, an agent judging a
 * delivery) terminates or ignores what this rejects instead of acting on it.
 */
export function decodeRunRecord(where: RunRecordSubject, data: Uint8Array): Decoded<RunRecord> {
  if (where.kind === 'work') {
    const decoded = decodeStepMessage(data);
    if (!decoded.ok) return decoded;
    const msg = decoded.value;
    if (msg.runId !== where.runId || msg.pipeline.steps[msg.stepIndex].id !== where.stepId) {
      return { ok: false, reason: `the message is for run ${msg.runId} step "${msg.pipeline.steps[msg.stepIndex].id}", not the ${where.runId} "${where.stepId}" its subject names` };
    }
    const bad = msg.from && endedProblem(msg.from);
    if (bad) return { ok: false, reason: `from: ${bad}` };
    return { ok: true, value: { kind: 'work', msg } };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(strictUtf8.decode(data));
  } catch (err) {
    return { ok: false, reason: `payload is not UTF-8 JSON: ${(err as Error).message}` };
  }
  if (!isObject(raw)) return { ok: false, reason: 'payload is not a JSON object' };
  if (raw.v !== MESSAGE_VERSION) return { ok: false, reason: `unsupported message version ${JSON.stringify(raw.v)}` };
  if (raw.kind !== where.kind) return { ok: false, reason: `a "${String(raw.kind)}" record on a ${where.kind} subject` };
  if (raw.runId !== where.runId) return { ok: false, reason: `runId ${JSON.stringify(raw.runId)} is not the run its subject names` };
  if (!isTime(raw.at)) return { ok: false, reason: '"at" is not a timestamp' };
  if (where.kind === 'end') {
    if (raw.status !== 'succeeded' && raw.status !== 'failed' && raw.status !== 'cancelled') return { ok: false, reason: `unknown run status ${JSON.stringify(raw.status)}` };
    const bad = raw.from !== undefined && endedProblem(raw.from);
    if (bad) return { ok: false, reason: `from: ${bad}` };
    return { ok: true, value: { kind: 'end', end: raw as unknown as RunEnd } };
  }
  if (where.kind === 'done') {
    const bad = endedProblem(raw.from);
    if (bad) return { ok: false, reason: `from: ${bad}` };
    if ((raw.from as { stepId: string }).stepId !== where.stepId) return { ok: false, reason: 'from.stepId is not the step its subject names' };
    return { ok: true, value: { kind: 'done', done: raw as unknown as StepDone } };
  }
  if (raw.stepId !== where.stepId) return { ok: false, reason: 'stepId is not the step its subject names' };
  if (!isCount(raw.stepIndex, 0)) return { ok: false, reason: 'stepIndex is not a non-negative integer' };
  if (!isCount(raw.attempt, 1)) return { ok: false, reason: 'attempt is not a positive integer' };
  if (typeof raw.agent !== 'string' || typeof raw.machine !== 'string') return { ok: false, reason: 'agent and machine are required' };
  return { ok: true, value: { kind: where.kind, record: raw as unknown as StepRecord } };
}

function endedProblem(v: unknown): string | undefined {
  if (!isObject(v)) return 'not an object';
  if (typeof v.stepId !== 'string' || !STEP_ID_PATTERN.test(v.stepId)) return 'stepId is missing or malformed';
  if (!isCount(v.stepIndex, 0) || !isCount(v.attempt, 0)) return 'stepIndex or attempt is malformed';
  if (!['succeeded', 'failed', 'cancelled', 'skipped'].includes(v.status as string)) return `unknown status ${JSON.stringify(v.status)}`;
  if (!isTime(v.at)) return '"at" is not a timestamp';
  return undefined;
}

