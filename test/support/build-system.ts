import Docker from 'dockerode';
import type { JsonObject, PipelineStep, Run, StepRun } from '@conveyor/contracts';
import { BuiltinDriverFleet, tutorialPipeline } from './builtin-drivers';
import { ensureBuildImage, ensureDockerEngine } from './docker';
import { makeTestRepository, type TestRepository } from './git-repo';
import { NatsServer } from './nats-server';
import { TestSystem } from './system';

/**
 * What the build suites share: Docker and the build image, a test repository, a system
 * (nats-server + gateway) and the four built-in drivers as real processes, with a way to
 * start a run of a tutorial-shaped pipeline.
 */
export class BuildSystem {
  readonly docker = new Docker();
  private seq = 0;

  private constructor(
    readonly sys: TestSystem,
    readonly fleet: BuiltinDriverFleet,
    readonly repo: TestRepository,
  ) {}

  /** `env` goes to the gateway and to the drivers (e.g. CONVEYOR_SECRET_KEY). */
  static async start(env: Record<string, string> = {}): Promise<BuildSystem> {
    await ensureDockerEngine();
    ensureBuildImage();
    const repo = makeTestRepository();
    const sys = await TestSystem.on(await NatsServer.start(), {}, env);
    const fleet = new BuiltinDriverFleet(sys.nats.url, env);
    await fleet.startAll();
    return new BuildSystem(sys, fleet, repo);
  }

  /** Creates a tutorial-shaped pipeline (build and stop step options in `build`, `stop`) and starts a run with `spec`. */
  async startBuild(spec: JsonObject, build: Partial<PipelineStep> = {}, stop: Partial<PipelineStep> = {}): Promise<string> {
    const name = `build-${++this.seq}`;
    await this.sys.api.ok('POST', '/pipelines', tutorialPipeline(name, 'thing', build, stop));
    return (await this.sys.api.ok<{ runid: string }>('POST', '/resources', { name, resource: 'thing', pipeline: name, spec })).runid;
  }

  /** Stops everything; returns how many containers of the fleet were still there (should be 0). */
  async stop(): Promise<number> {
    const left = await this.fleet.stop(this.docker);
    await this.sys.stop();
    this.repo.dispose();
    return left;
  }
}

/** A run's step by id (the tutorial pipeline's are start, clone, build, stop). */
export function stepOf(run: Run, id: string): StepRun {
  const step = run.steps.find((s) => s.id === id);
  if (!step) throw new Error(`run ${run.id} has no step "${id}"`);
  return step;
}
