import { Controller } from '@nestjs/common';
import { resolveBuildSpec } from '@conveyor/build-spec';
import { HandleStep, type StepContext, type StepResult } from '@conveyor/driver-sdk';
import { cloneRepository, maskCredentials } from '@conveyor/git';
import { Workspaces } from '@conveyor/workspace';

/**
 * Step 2 of a build: clones the spec's `repository` at `commit` (or else `ref`) into the run's workspace, which
 * container-start mounted at /workspace. git's progress goes to the run's log. A redelivered
 * step finds the complete clone and does not fetch again.
 */
@Controller()
export class GitClonerDriver {
  constructor(private readonly workspaces: Workspaces) {}

  @HandleStep('git-cloner')
  async run(ctx: StepContext): Promise<StepResult> {
    const spec = resolveBuildSpec(ctx);
    if (!spec.repository) {
      return { success: false, message: 'nothing to clone: the resource spec has no "repository" (a git URL)' };
    }
    try {
      const clone = await cloneRepository({
        repository: spec.repository,
        ref: spec.commit ?? spec.ref,
        dir: this.workspaces.workspaceFor(ctx.runId),
        log: ctx.log,
        signal: ctx.signal,
      });
      return {
        success: true,
        message: `${clone.reused ? 'already cloned' : 'cloned'} ${clone.ref} at ${clone.commit.slice(0, 12)}`,
        data: { commit: clone.commit, ref: clone.ref, reused: clone.reused },
      };
    } catch (err) {
      // GitInputError and GitCloneError messages are masked already; anything else may quote the URL.
      return { success: false, message: maskCredentials(err instanceof Error ? err.message : String(err)) };
    }
  }
}
