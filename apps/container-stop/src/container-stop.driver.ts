import { Controller } from '@nestjs/common';
import { BuildContainers } from '@conveyor/docker';
import { HandleStep, type StepContext, type StepResult } from '@conveyor/driver-sdk';
import { Workspaces } from '@conveyor/workspace';

/**
 * The last step of a build, and its cleanup: the pipeline marks it `always`, so it runs after
 * a failed or cancelled build too. Stops and removes the run's container and deletes its
 * workspace; either one being gone already is fine (an earlier step may have failed before
 * making it, or this step is a redelivery). Every Docker call has the engine deadline
 * (CONVEYOR_DOCKER_TIMEOUT) and the step's own timeout ends the removal when it comes first:
 * a hung engine fails the step, it never holds the run.
 */
@Controller()
export class ContainerStopDriver {
  constructor(
    private readonly containers: BuildContainers,
    private readonly workspaces: Workspaces,
  ) {}

  // The container is gone afterwards: later steps of the run (a second container-start) may go to any machine.
  @HandleStep('container-stop', { releasesMachine: true })
  async run(ctx: StepContext): Promise<StepResult> {
    // Pinned to the machine that started the container: its name has this machine's id.
    const name = this.containers.containerName(ctx.runId, ctx.agent.machine);
    const { removed } = await this.containers.stopAndRemove(name, { signal: ctx.signal });
    ctx.log.info(removed ? `stopped and removed container ${name}` : `container ${name} does not exist: nothing to stop`);
    await this.workspaces.remove(ctx.runId);
    ctx.log.info(`deleted workspace ${this.workspaces.workspaceFor(ctx.runId)}`);
    return { success: true, message: removed ? `removed container ${name}` : 'no container to remove', data: { containerName: name, removed } };
  }
}
