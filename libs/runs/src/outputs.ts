import type { JsonObject, StepOutput } from '@conveyor/contracts';

/** The largest `$CONVEYOR_OUTPUT` file a build step may write (key=value lines). */
export const MAX_OUTPUT_FILE_BYTES = 64 * 1024;

const REF = /\$\{\{\s*([^}]*?)\s*\}\}/g;
const PATH = /^steps\.([A-Za-z0-9_-]+)\.outputs((?:\.[A-Za-z0-9_-]+)+)$/;
/** What drivers fill in themselves, when they run: a build cache's key (`hashFiles` of the workspace, see libs/caches). Left as written. */
const DRIVER_EXPRESSION = /^(hashFiles\(.*\)|resource\.(name|type)|pipeline)$/;

/** A `${{ … }}` a step's config refers to that cannot be filled in. */
export class InterpolationError extends Error {}

/**
 * A step's config with every `${{ steps.<id>.outputs.<key>[.<key>…] }}` in its strings replaced
 * by that value of an earlier step's output data (`outputs` of the step message). A string that
 * is nothing but one reference takes the value as it is (a number stays a number); inside a
 * longer string it is written as text (objects as JSON). A reference to a step that has no such
 * output, or to anything but `steps.…outputs…`, is an InterpolationError naming it; the
 * expressions a driver fills in itself (`hashFiles(…)`, `resource.name`, `resource.type`,
 * `pipeline`) are left as they are.
 */
export function interpolateConfig(config: JsonObject, outputs: Record<string, StepOutput>): JsonObject {
  const lookup = (expr: string): unknown => {
    const m = PATH.exec(expr);
    if (!m) throw new InterpolationError(`\${{ ${expr} }}: only steps.<id>.outputs.<key> can be filled in`);
    const [, stepId, rest] = m;
    const out = outputs[stepId];
    if (!out) throw new InterpolationError(`\${{ ${expr} }}: step "${stepId}" has no output here (is it a step this one needs, and did it end?)`);
    let v: unknown = out.data ?? {};
    for (const key of rest.slice(1).split('.')) {
      if (typeof v !== 'object' || v === null || !(key in v)) throw new InterpolationError(`\${{ ${expr} }}: step "${stepId}" has no output "${rest.slice(1)}"`);
      v = (v as Record<string, unknown>)[key];
    }
    return v;
  };
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      const whole = /^\$\{\{\s*([^}]*?)\s*\}\}$/.exec(v);
      if (whole && !DRIVER_EXPRESSION.test(whole[1])) return lookup(whole[1]);
      return v.replace(REF, (ref: string, expr: string) => {
        if (DRIVER_EXPRESSION.test(expr)) return ref;
        const got = lookup(expr);
        return typeof got === 'string' ? got : JSON.stringify(got);
      });
    }
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(config) as JsonObject;
}

/**
 * The outputs a build wrote to `$CONVEYOR_OUTPUT`: one `key=value` per line (the value is the
 * rest of the line; a later key wins), or `key<<DELIM` … `DELIM` for a value of several lines,
 * as GitHub's `$GITHUB_OUTPUT`. Blank lines are ignored; anything else is an error naming its line.
 */
export function parseOutputFile(text: string): { outputs: Record<string, string> } | { error: string } {
  if (Buffer.byteLength(text) > MAX_OUTPUT_FILE_BYTES) return { error: `$CONVEYOR_OUTPUT holds more than ${MAX_OUTPUT_FILE_BYTES} bytes, the limit of a step's outputs` };
  const outputs: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (!line.trim()) continue;
    const multi = /^([A-Za-z_][A-Za-z0-9_-]*)<<(\S+)$/.exec(line);
    if (multi) {
      const end = lines.findIndex((l, j) => j > i && l.replace(/\r$/, '') === multi[2]);
      if (end < 0) return { error: `$CONVEYOR_OUTPUT line ${i + 1}: "${multi[1]}<<${multi[2]}" is never closed by a line "${multi[2]}"` };
      outputs[multi[1]] = lines.slice(i + 1, end).join('\n');
      i = end;
      continue;
    }
    const kv = /^([A-Za-z_][A-Za-z0-9_-]*)=(.*)$/.exec(line);
    if (!kv) return { error: `$CONVEYOR_OUTPUT line ${i + 1} is not key=value: ${JSON.stringify(line.slice(0, 80))}` };
    outputs[kv[1]] = kv[2];
  }
  return { outputs };
}
