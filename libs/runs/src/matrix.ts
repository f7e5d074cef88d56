import type { JsonObject, MatrixSpec, MatrixValue, PipelineStep } from '@conveyor/contracts';

/** At most this many combinations per matrix step, and steps in a pipeline once every matrix is expanded. */
export const MATRIX_LIMITS = { combinations: 64, steps: 256 } as const;

const AXIS = /^[A-Za-z_][A-Za-z0-9_]*$/;
const isScalar = (v: unknown): v is MatrixValue => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
const matches = (combo: Record<string, MatrixValue>, pattern: Record<string, unknown>) => Object.entries(pattern).every(([k, v]) => combo[k] === v);

/**
 * The combinations of a step's matrix: the product of its axes, without those an `exclude`
 * entry matches (every key it names equal), plus each `include` entry that is not already one
 * of them (as a combination of its own; GitHub's rule of extending matching combinations is not
 * followed). A problem names what is wrong; more than MATRIX_LIMITS.combinations is one.
 */
export function matrixCombinations(m: MatrixSpec): { combinations: Array<Record<string, MatrixValue>>; problem?: string } {
  const axes = Object.entries(m).filter(([k]) => k !== 'include' && k !== 'exclude');
  for (const [k, values] of axes) {
    if (!AXIS.test(k)) return { combinations: [], problem: `matrix axis "${k}" is not a name (letters, digits, "_"; not starting with a digit)` };
    if (!Array.isArray(values) || values.length === 0 || !values.every(isScalar)) return { combinations: [], problem: `matrix axis "${k}" must be a non-empty list of strings, numbers or booleans` };
  }
  const entries = (key: 'include' | 'exclude') => {
    const v = m[key];
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((e) => typeof e === 'object' && e !== null && !Array.isArray(e) && Object.values(e).every(isScalar))) throw new Error(`matrix "${key}" must be a list of objects of strings, numbers or booleans`);
    return v as Array<Record<string, MatrixValue>>;
  };
  let include: Array<Record<string, MatrixValue>>;
  let exclude: Array<Record<string, MatrixValue>>;
  try {
    include = entries('include');
    exclude = entries('exclude');
  } catch (err) {
    return { combinations: [], problem: (err as Error).message };
  }
  if (!axes.length && !include.length) return { combinations: [], problem: 'matrix has no axis and no include' };
  // Counted before it is built: a matrix of 10,000 combinations is refused, not computed.
  const product = axes.reduce((n, [, values]) => n * (values as MatrixValue[]).length, axes.length ? 1 : 0);
  if (product > MATRIX_LIMITS.combinations * 16) return { combinations: [], problem: `matrix has ${product} combinations; at most ${MATRIX_LIMITS.combinations}` };
  let combinations: Array<Record<string, MatrixValue>> = axes.length ? [{}] : [];
  for (const [k, values] of axes) combinations = combinations.flatMap((c) => (values as MatrixValue[]).map((v) => ({ ...c, [k]: v })));
  combinations = combinations.filter((c) => !exclude.some((e) => matches(c, e)));
  for (const extra of include) if (!combinations.some((c) => matches(c, extra) && Object.keys(c).length === Object.keys(extra).length)) combinations.push({ ...extra });
  if (combinations.length > MATRIX_LIMITS.combinations) return { combinations: [], problem: `matrix has ${combinations.length} combinations; at most ${MATRIX_LIMITS.combinations}` };
  if (!combinations.length) return { combinations, problem: 'matrix has no combination left after exclude' };
  return { combinations };
}

/**
 * A pipeline's steps with every matrix step expanded into one step per combination, ids
 * `<id>-<n>` (from 1, in the order of matrixCombinations), named `<name> (axis=value, …)`,
 * each with its values in `config.matrix` and `matrixOf: <id>`. A step that needs a matrix step
 * (by `needs`, or by coming after it) needs all its expansions. Steps are returned unchanged
 * when no step has a matrix, so a straight line stays one.
 */
export function expandMatrices(steps: readonly PipelineStep[]): { steps: PipelineStep[]; problems: Array<{ stepId: string; message: string }> } {
  if (!steps.some((s) => s.matrix)) return { steps: [...steps], problems: [] };
  const problems: Array<{ stepId: string; message: string }> = [];
  const expansions = new Map<string, string[]>();
  const ids = new Set(steps.map((s) => s.id));
  const out: PipelineStep[] = [];
  const expanded = steps.map((s) => {
    if (!s.matrix) return [s];
    const { combinations, problem } = matrixCombinations(s.matrix);
    if (problem) {
      problems.push({ stepId: s.id, message: problem });
      return [];
    }
    const made = combinations.map((combo, n) => {
      const id = `${s.id}-${n + 1}`;
      if (ids.has(id)) problems.push({ stepId: s.id, message: `its expansion "${id}" has the id of another step` });
      const { matrix: _, ...rest } = s;
      const label = Object.entries(combo).map(([k, v]) => `${k}=${v}`).join(', ');
      return { ...rest, id, name: `${s.name || s.id} (${label})`, config: { ...(s.config ?? {}), matrix: combo as JsonObject }, matrixOf: s.id };
    });
    expansions.set(s.id, made.map((m) => m.id));
    return made;
  });
  const widen = (needs: string[]) => needs.flatMap((n) => expansions.get(n) ?? [n]);
  steps.forEach((s, i) => {
    // Needs made explicit: "the step before" of a step after a matrix step is all its expansions.
    const needs = s.needs ?? (i === 0 ? [] : [steps[i - 1].id]);
    for (const e of expanded[i]) out.push({ ...e, needs: widen(needs) });
  });
  if (out.length > MATRIX_LIMITS.steps) problems.push({ stepId: steps.find((s) => s.matrix)!.id, message: `expands the pipeline to ${out.length} steps; at most ${MATRIX_LIMITS.steps}` });
  return { steps: out, problems };
}

/** A matrix step's values as environment variables for a build: `MATRIX_<AXIS>` (upper case). */
export function matrixEnv(config: Record<string, unknown>): Array<{ name: string; value: string }> {
  const m = config.matrix;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return [];
  return Object.entries(m).filter(([k, v]) => AXIS.test(k) && isScalar(v)).map(([k, v]) => ({ name: `MATRIX_${k.toUpperCase()}`, value: String(v) }));
}
