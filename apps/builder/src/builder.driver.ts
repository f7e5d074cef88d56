import { Controller } from '@nestjs/common';
import { containerWorkdir, resolveBuildSpec } from '@conveyor/build-spec';
import { BuildContainers } from '@conveyor/docker';
import { HandleStep, type StepContext, type StepResult } from '@conveyor/driver-sdk';
import { MAX_OUTPUT_FILE_BYTES, matrixEnv, parseOutputFile } from '@conveyor/runs';

/**
 * Step 3 of a build: runs the spec's `commands` one after another in the run's container, in
 * /workspace (or /workspace/<workdir>) with the build's env. Output goes to the run's log as
 * it comes. The first command that exits non-zero fails the step; a cancel or timeout kills
 * the running command (the SDK reports which it was).
 */
@Controller()
export class BuilderDriver {
  constructor(private readonly containers: BuildContainers) {}

  @HandleStep('builder')
  async run(ctx: StepContext): Promise<StepResult> {
    const spec = resolveBuildSpec(ctx);
    const commands = spec.commands;
    if (commands.length === 0) {
      ctx.log.info('no commands to run: set "commands" in the resource spec or the step config');
      return { success: true, message: 'no commands to run' };
    }
    const started = ctx.outputOf('container-start')?.data?.containerName;
    const container = typeof started === 'string' ? started : this.containers.containerName(ctx.runId, ctx.agent.machine);
    const workdir = containerWorkdir(spec);
    // A file for key=value outputs (as GitHub's $GITHUB_OUTPUT), one per step and attempt: steps
    // side by side share the container. A matrix step's values as MATRIX_<AXIS>. The build's own
    // env wins over both.
    const outputFile = `/tmp/conveyor-output.${ctx.runId}.${ctx.step.id}.${ctx.attempt}`;
    const ours = [{ name: 'CONVEYOR_OUTPUT', value: outputFile }, ...matrixEnv(ctx.config)];
    const env = [...ours.filter((m) => !spec.env.some((e) => e.name === m.name)), ...spec.env];

    for (const [i, command] of commands.entries()) {
      const which = `command ${i + 1} of ${commands.length} (${JSON.stringify(command)})`;
      ctx.log.info(`$ ${command}`);
      const result = await this.containers.exec(container, command, {
        env,
        workdir,
        signal: ctx.signal,
        onOutput: (stream, chunk) => ctx.log.write(stream, chunk),
      });
      if (result.aborted) return { success: false, message: `${which} was stopped: ${abortReason(ctx.signal)}` };
      if (result.exitCode === null) return { success: false, message: `${which} ended without an exit code (killed?)` };
      if (result.exitCode !== 0) return { success: false, message: `${which} exited with code ${result.exitCode}` };
    }
    const outputs = await this.readOutputs(container, outputFile, ctx.signal);
    if ('error' in outputs) return { success: false, message: outputs.error };
    const message = `${commands.length} command${commands.length === 1 ? '' : 's'} succeeded`;
    return Object.keys(outputs.outputs).length ? { success: true, message, data: outputs.outputs } : { success: true, message };
  }

  /** What the commands wrote to $CONVEYOR_OUTPUT (created by the first `>>`; read at most one byte over the limit), then the file is removed. */
  private async readOutputs(container: string, file: string, signal: AbortSignal): Promise<{ outputs: Record<string, string> } | { error: string }> {
    const chunks: Buffer[] = [];
    const read = await this.containers.exec(container, `if [ -f '${file}' ]; then head -c ${MAX_OUTPUT_FILE_BYTES + 1} '${file}'; rm -f '${file}'; fi`, { signal, onOutput: (stream, chunk) => stream === 'stdout' && chunks.push(chunk) });
    if (read.exitCode !== 0) return { error: `could not read $CONVEYOR_OUTPUT (${file}): exit code ${read.exitCode}` };
    return parseOutputFile(Buffer.concat(chunks).toString('utf8'));
  }
}

function abortReason(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'aborted';
}
