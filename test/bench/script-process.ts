import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * A bench program run as a process of its own (a file that acts when it is `require.main`),
 * talking over lines on its stdout and stdin.
 */
export interface ScriptProcess {
  child: ChildProcess;
  lines: AsyncIterator<string>;
}

/** Starts `file` as a script with `args` and waits (bounded) until it says `ready`; `what` names it in errors. */
export async function startScript(file: string, args: string[], what: string): Promise<ScriptProcess> {
  const child = spawn(process.execPath, [file, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  try {
    await nextLine(lines, 'ready', 60_000, what);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return { child, lines };
}

/** The next line starting with `prefix` (others are skipped), bounded by `timeoutMs`. */
export async function nextLine(lines: AsyncIterator<string>, prefix: string, timeoutMs: number, what: string): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no "${prefix}" in ${timeoutMs} ms`)), timeoutMs)));
  try {
    for (;;) {
      const next = await Promise.race([lines.next(), timeout]);
      if (next.done) throw new Error(`${what}: the process exited before "${prefix}"`);
      if (next.value.startsWith(prefix)) return next.value;
    }
  } finally {
    clearTimeout(timer);
  }
}
