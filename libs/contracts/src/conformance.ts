import type { JsonObject } from './models';

/**
 * What a step asks of a driver under `conveyor conformance`, in its pipeline step's
 * `config.conformance`. A driver being checked does exactly this instead of its own work (SDK
 * drivers with CONVEYOR_CONFORMANCE=1; a driver written without the SDK implements it itself):
 *   succeed  return success with `data` (and `message`)
 *   echo     return success with `data: { received: { <stepId>: <data of that earlier step> } }`
 *   fail     return a failure with `message`
 *   throw    fail by throwing (an exception, a panic) with `message`
 *   sleep    wait `ms`, then succeed; stop at once when the step is aborted (timeout, cancel)
 *   log      write `lines` lines `line 1` … `line N` to the step's stdout, then succeed
 */
export type ConformanceInstruction =
  | { action: 'succeed'; data?: JsonObject; message?: string }
  | { action: 'echo' }
  | { action: 'fail'; message: string }
  | { action: 'throw'; message: string }
  | { action: 'sleep'; ms: number }
  | { action: 'log'; lines: number };

export const CONFORMANCE_ACTIONS = ['succeed', 'echo', 'fail', 'throw', 'sleep', 'log'] as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The instruction in a step's config, or why there is none that can be followed. */
export function readConformanceInstruction(config: JsonObject | undefined): ConformanceInstruction | { error: string } {
  const c = config?.conformance;
  if (!isObject(c)) return { error: 'the step has no conformance instruction (config.conformance)' };
  switch (c.action) {
    case 'succeed':
      if (c.data !== undefined && !isObject(c.data)) return { error: 'conformance "succeed": data must be an object' };
      return { action: 'succeed', data: c.data as JsonObject | undefined, message: typeof c.message === 'string' ? c.message : undefined };
    case 'echo':
      return { action: 'echo' };
    case 'fail':
    case 'throw':
      return { action: c.action, message: typeof c.message === 'string' ? c.message : `conformance ${c.action}` };
    case 'sleep':
      if (typeof c.ms !== 'number' || !(c.ms >= 0)) return { error: 'conformance "sleep": ms must be a number of milliseconds' };
      return { action: 'sleep', ms: c.ms };
    case 'log':
      if (!Number.isInteger(c.lines) || (c.lines as number) < 0) return { error: 'conformance "log": lines must be a whole number' };
      return { action: 'log', lines: c.lines as number };
    default:
      return { error: `unknown conformance action ${JSON.stringify(c.action)} (one of ${CONFORMANCE_ACTIONS.join(', ')})` };
  }
}
