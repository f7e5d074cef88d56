import { readConformanceInstruction, type JsonObject } from '@conveyor/contracts';
import type { StepContext, StepResult } from './step-context';

/**
 * The handler an SDK driver runs instead of its own under `conveyor conformance`
 * (CONVEYOR_CONFORMANCE=1): it does what the step's conformance instruction says, so any
 * driver built on the SDK can be put through the kit without Docker, git or anything else its
 * real work needs. Everything around the handler (claims, hand-offs, acks, logs) is the SDK's
 * own, which is what the kit checks.
 */
export async function followConformanceInstruction(ctx: StepContext): Promise<StepResult> {
  const i = readConformanceInstruction(ctx.step.config);
  if ('error' in i) return { success: false, message: i.error };
  switch (i.action) {
    case 'succeed':
      return { success: true, message: i.message, data: i.data };
    case 'echo': {
      const received: JsonObject = {};
      for (const [id, out] of Object.entries(ctx.outputs)) received[id] = out.data ?? null;
      return { success: true, data: { received } };
    }
    case 'fail':
      return { success: false, message: i.message };
    case 'throw':
      throw new Error(i.message);
    case 'sleep':
      await abortableSleep(i.ms, ctx.signal);
      return { success: true };
    case 'log':
      for (let n = 1; n <= i.lines; n++) ctx.log.write('stdout', `line ${n}\n`);
      return { success: true };
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}
