import type { StepMessage, StepWhen } from '@conveyor/contracts';

/**
 * The CEL implementation, loaded at the first condition: most pipelines have none, and every
 * agent would otherwise carry it (about 15 MB, 70 ms to load).
 */
let cel: { lib: typeof import('@bufbuild/cel'); strings: typeof import('@bufbuild/cel/ext').strings } | undefined;
function celLib(): NonNullable<typeof cel> {
  cel ??= { lib: require('@bufbuild/cel') as typeof import('@bufbuild/cel'), strings: (require('@bufbuild/cel/ext') as typeof import('@bufbuild/cel/ext')).strings };
  return cel;
}

/** The longest `when.expr` taken. */
export const MAX_CONDITION_LENGTH = 2048;

/**
 * Why a step's `when` cannot be used (for a 400), or undefined. `expr` is CEL (https://cel.dev),
 * as Kubernetes and Tekton use: parsed here, so a syntax error is refused when the pipeline is
 * stored, not when a run reaches the step.
 */
export function conditionProblem(when: StepWhen): string | undefined {
  if (when.status !== undefined) {
    if (!Array.isArray(when.status) || when.status.length === 0 || !when.status.every((s) => s === 'success' || s === 'failure' || s === 'always')) {
      return 'when.status must be a non-empty list of "success", "failure", "always"';
    }
  }
  if (when.expr !== undefined) {
    if (typeof when.expr !== 'string' || !when.expr.trim()) return 'when.expr must be a CEL expression';
    if (when.expr.length > MAX_CONDITION_LENGTH) return `when.expr is ${when.expr.length} characters; at most ${MAX_CONDITION_LENGTH}`;
    try {
      celLib().lib.parse(when.expr);
    } catch (err) {
      return `when.expr does not compile: ${(err as Error).message}`;
    }
  }
  return undefined;
}

/**
 * The variables a condition sees: `resource` (type, name, version, spec, metadata), `spec` (the
 * resource's spec), `ref` (spec.ref, or ""), `version` (the resource's version), `pipeline` (its
 * name), `steps` (by id: `status` of every step so far, and `data` of those that ended).
 */
export function conditionInputs(msg: StepMessage, statuses: Record<string, { status: string; data?: object }>): Record<string, unknown> {
  const r = msg.resource;
  const ref = typeof r.spec.ref === 'string' ? r.spec.ref : '';
  return {
    resource: { type: r.type, name: r.name, version: BigInt(r.version), spec: r.spec, metadata: r.metadata },
    spec: r.spec,
    ref,
    version: BigInt(r.version),
    pipeline: msg.pipeline.name,
    steps: statuses,
  };
}

/** Evaluates a step's `when.expr`: true or false, or why it could not be (an unknown field, a type error, not a bool). */
export function evaluateCondition(expr: string, inputs: Record<string, unknown>): { value: boolean } | { error: string } {
  const { lib, strings } = celLib();
  let result;
  try {
    result = lib.run(expr, inputs as never, { funcs: strings });
  } catch (err) {
    return { error: (err as Error).message };
  }
  if (lib.isCelError(result)) return { error: result.message };
  if (typeof result !== 'boolean') return { error: `it gave ${typeof result === 'bigint' ? 'an int' : typeof result}, not a bool` };
  return { value: result };
}
