import { Controller } from '@nestjs/common';
import { resolveBuildSpec } from '@conveyor/build-spec';
import { BuildContainers, containerLabelsFromEnv } from '@conveyor/docker';
import { HandleStep, type StepContext, type StepResult } from '@conveyor/driver-sdk';
import { Workspaces } from '@conveyor/workspace';

/**
 * Step 1 of a build: the run's workspace folder and its container (the image from the spec,
 * the build's env, the workspace mounted at /workspace). The container's name comes from the
 * run id, so a redelivered step finds the container it already made and reuses it.
 */
@Controller()
export class ContainerStartDriver {
  // Read once at start-up: a bad CONVEYOR_CONTAINER_LABELS stops the driver, not every build.
  private readonly labels = containerLabelsFromEnv();

  constructor(
    private readonly containers: BuildContainers,
    private readonly workspaces: Workspaces,
  ) {}

  @HandleStep('container-start', { pinsMachine: true })
  async run(ctx: StepContext): Promise<StepResult> {
    const spec = resolveBuildSpec(ctx);
    // Secret values come from the SDK (decrypted for this step only) and go nowhere but the container's env.
    const secretEnv = spec.secretEnv.map(({ name, secret }) => {
      const value = ctx.secrets?.get(secret);
      if (value === undefined) throw new Error(`env "${name}" refers to secret "${secret}", which this agent could not read`);
      return { name, value };
    });
    const workspace = await this.workspaces.ensure(ctx.runId);
    const container = await this.containers.start({
      runId: ctx.runId,
      image: spec.image,
      env: [...spec.env, ...secretEnv],
      workspaceDir: workspace,
      agent: ctx.agent.id,
      machine: ctx.agent.machine,
      labels: this.labels,
      log: ctx.log,
      signal: ctx.signal,
    });
    ctx.log.info(
      container.reused
        ? `reused the run's existing container ${container.name} (this step ran before)`
        : `created container ${container.name} from ${container.image}, workspace ${workspace}`,
    );
    return {
      success: true,
      message: `${container.reused ? 'reused' : 'started'} container ${container.name}`,
      data: { containerId: container.containerId, containerName: container.name, image: container.image, reused: container.reused, workspace },
    };
  }
}
