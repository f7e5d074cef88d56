import { Controller } from '@nestjs/common';
import { ArtifactError, collectArtifacts, formatBytes, readArtifactRule, type ArtifactRule } from '@conveyor/artifacts';
import { containerWorkdir, resolveBuildSpec } from '@conveyor/build-spec';
import { CacheError, readCacheRules, renderCacheKey, type CacheRule, type Restored } from '@conveyor/caches';
import { loadConfig } from '@conveyor/config';
import { BuildContainers } from '@conveyor/docker';
import { HandleStep, type StepContext, type StepResult } from '@conveyor/driver-sdk';
import { MAX_OUTPUT_FILE_BYTES, matrixEnv, parseOutputFile } from '@conveyor/runs';
import { Workspaces } from '@conveyor/workspace';

/**
 * Step 3 of a build: runs the spec's `commands` one after another in the run's container, in
 * /workspace (or /workspace/<workdir>) with the build's env. Output goes to the run's log as
 * it comes. The first command that exits non-zero fails the step; a cancel or timeout kills
 * the running command (the SDK reports which it was). With `artifacts`, it first fetches the
 * earlier steps' artifacts it `needs` into the workspace, and afterwards keeps the files its
 * globs match as the run's artifacts (after success, or always).
 */
@Controller()
export class BuilderDriver {
  private readonly limits = loadConfig(process.env).artifacts;

  constructor(
    private readonly containers: BuildContainers,
    private readonly workspaces: Workspaces,
  ) {}

  @HandleStep('builder')
  async run(ctx: StepContext): Promise<StepResult> {
    let rule: ArtifactRule | undefined;
    let caches: CacheRule[];
    try {
      rule = readArtifactRule(ctx.resource.spec.artifacts ?? ctx.config.artifacts);
      caches = readCacheRules(ctx.resource.spec.cache ?? ctx.config.cache);
    } catch (err) {
      return { success: false, message: (err as Error).message };
    }
    const workspace = this.workspaces.workspaceFor(ctx.runId);
    for (const name of rule?.needs ?? []) {
      const started = Date.now();
      try {
        const got = await ctx.artifacts.download(name, workspace);
        ctx.log.info(`fetched artifact ${name} (${formatBytes(got.size)}, sha256 ${got.sha256.slice(0, 12)}, from step ${got.step}) in ${Date.now() - started} ms`);
      } catch (err) {
        return { success: false, message: `cannot fetch artifact ${JSON.stringify(name)}: ${(err as Error).message}` };
      }
    }
    const restored: Array<{ rule: CacheRule; key: string; got: Restored }> = [];
    for (const c of caches) {
      let key: string;
      try {
        key = await renderCacheKey(c.key, { workspace, pipeline: ctx.pipeline, resource: { name: ctx.resource.name, type: ctx.resource.type } });
      } catch (err) {
        return { success: false, message: err instanceof CacheError ? err.message : `cache key ${JSON.stringify(c.key)} could not be made: ${(err as Error).message}` };
      }
      restored.push({ rule: c, key, got: await this.restore(ctx, workspace, c, key) });
    }
    const result = await this.build(ctx);
    // Saved after success only, and only when the exact key missed (an entry is never replaced).
    if (result.success) for (const r of restored) if (r.got.hit !== 'exact') await this.save(ctx, workspace, r.rule, r.key);
    if (!rule?.paths.length || (!result.success && rule.when !== 'always')) return result;
    const kept = await this.keep(ctx, workspace, rule);
    if (kept === undefined) return result;
    return result.success ? { success: false, message: kept } : { ...result, message: `${result.message}; and ${kept}` };
  }

  /** A cache is an optimisation: one that cannot be read is a warning and a miss, not a failed step. */
  private async restore(ctx: StepContext, workspace: string, rule: CacheRule, key: string): Promise<Restored> {
    const started = Date.now();
    try {
      const got = await ctx.caches.restore(key, rule.restoreKeys, workspace);
      if (got.hit === 'miss') ctx.log.info(`cache ${key}: miss`);
      else ctx.log.info(`cache ${key}: restored ${got.hit === 'exact' ? 'it' : `${got.key} (a restoreKeys match)`}, ${formatBytes(got.size)}, in ${Date.now() - started} ms`);
      return got;
    } catch (err) {
      ctx.log.warn(`cache ${key}: could not be restored (${(err as Error).message}); building without it`);
      return { hit: 'miss' };
    }
  }

  private async save(ctx: StepContext, workspace: string, rule: CacheRule, key: string): Promise<void> {
    const started = Date.now();
    try {
      const saved = await ctx.caches.save(key, rule.paths, workspace);
      if (saved.saved) ctx.log.info(`cache ${key}: saved ${formatBytes(saved.size)} in ${Date.now() - started} ms`);
      else ctx.log.info(`cache ${key}: not saved: ${saved.why}`);
    } catch (err) {
      ctx.log.warn(`cache ${key}: not saved: ${(err as Error).message}`);
    }
  }

  /** Uploads what the rule matches; undefined when all went well, else why not (nothing is uploaded then). */
  private async keep(ctx: StepContext, workspace: string, rule: ArtifactRule): Promise<string | undefined> {
    try {
      const files = await collectArtifacts(workspace, rule, this.limits);
      const started = Date.now();
      const kept = await ctx.artifacts.upload(files);
      for (const a of kept) ctx.log.info(`kept artifact ${a.name} (${formatBytes(a.size)}, sha256 ${a.sha256})`);
      const total = kept.reduce((n, a) => n + a.size, 0);
      if (kept.length) ctx.log.info(`kept ${kept.length} artifact${kept.length === 1 ? '' : 's'}, ${formatBytes(total)}, in ${Date.now() - started} ms`);
      else ctx.log.info('no artifacts matched (optional)');
      return undefined;
    } catch (err) {
      return err instanceof ArtifactError ? err.message : `artifacts could not be kept: ${(err as Error).message}`;
    }
  }

  private async build(ctx: StepContext): Promise<StepResult> {
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
        onOutput: (stream, chunk) => {
          ctx.log.write(stream, chunk);
          return ctx.log.backlog();
        },
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
    const read = await this.containers.exec(container, `if [ -f '${file}' ]; then head -c ${MAX_OUTPUT_FILE_BYTES + 1} '${file}'; rm -f '${file}'; fi`, { signal, onOutput: (stream, chunk) => void (stream === 'stdout' && chunks.push(chunk)) });
    if (read.exitCode !== 0) return { error: `could not read $CONVEYOR_OUTPUT (${file}): exit code ${read.exitCode}` };
    return parseOutputFile(Buffer.concat(chunks).toString('utf8'));
  }
}

function abortReason(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'aborted';
}
