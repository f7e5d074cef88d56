import type { PipelineStep, Run } from '@conveyor/contracts';
import { resolveNeeds } from './graph';

/**
 * The steps of a re-run of `old` (its pipeline as it ran). All of them run again, or with
 * `failedOnly` only what did not succeed and what needs it; the other steps are carried over
 * with their outcome and outputs (`reused`). Steps that run whatever happened (`always`, a
 * `when.status` with failure or always) run again. A step that ran on a build machine its run
 * was pinned to (`pin`: container-start pinned it, or it ran after that on the run's container
 * and workspace) made state that its run's cleanup removed: when a step that needs it runs
 * again, it runs again too, so what it made is made again (in the seed pipeline a failed build
 * re-runs container-start and git-cloner; a graph's steps that never touched a machine, e.g.
 * other test drivers' branches, are carried over). Undefined when nothing is to run again.
 */
export function planRerun(old: Run, failedOnly: boolean): PipelineStep[] | undefined {
  const steps = old.pipeline.steps.map(({ reused: _, ...s }) => s);
  if (!failedOnly) return steps;
  const { needs } = resolveNeeds(steps);
  const state = (i: number) => old.steps.find((s) => s.id === steps[i].id);
  const again = new Set<number>();
  steps.forEach((s, i) => {
    if (state(i)?.status !== 'succeeded') again.add(i);
  });
  if (!again.size) return undefined;
  steps.forEach((s, i) => {
    if (s.always || s.when?.status?.some((x) => x === 'failure' || x === 'always')) again.add(i);
  });
  for (let grew = true; grew; ) {
    grew = false;
    steps.forEach((_, i) => {
      if (again.has(i)) {
        // What it needs that made state on its machine is made again.
        for (const j of needs[i]) if (!again.has(j) && state(j)?.pin) (again.add(j), (grew = true));
      } else if (needs[i].some((j) => again.has(j))) {
        again.add(i);
        grew = true;
      }
    });
  }
  return steps.map((s, i) => {
    if (again.has(i)) return s;
    const was = state(i)!;
    return { ...s, reused: { from: was.reusedFrom ?? old.id, ...(was.message !== undefined ? { message: was.message } : {}), ...(was.data ? { data: was.data } : {}) } };
  });
}
