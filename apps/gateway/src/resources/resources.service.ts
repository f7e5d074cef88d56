import { BadRequestException, ConflictException, Injectable, Logger, NotFoundException, ServiceUnavailableException } from '@nestjs/common';
import { type JsonObject, type Pipeline, type Resource, type TriggerOrigin, newRunId } from '@conveyor/contracts';
import { type ResourceDto, type ResourceUpdateDto } from '../common/request-bodies';
import { ResourcesStore } from '@conveyor/store';
import { PipelineCatalog } from '../common/pipeline-catalog.service';
import { JsonSchemaService } from '../common/json-schema.service';
import { RunStarter } from '../runs/run-starter.service';
import { RunAdmission } from '../runs/run-admission.service';
import { SecretsService } from '../secrets/secrets.service';

/** Conveyor CI's answer to a resource write. */
export interface ResourceWriteResult {
  name: string;
  /** The run this version started; absent when the resource names no pipeline. */
  runid?: string;
  message: string;
  version: number;
}

@Injectable()
export class ResourcesService {
  private readonly log = new Logger(ResourcesService.name);

  constructor(
    private readonly resources: ResourcesStore,
    /** Definitions and pipelines, held in memory: a run's start reads neither from NATS. */
    private readonly catalog: PipelineCatalog,
    private readonly schemas: JsonSchemaService,
    private readonly runs: RunStarter,
    private readonly admission: RunAdmission,
    private readonly secrets: SecretsService,
  ) {}

  /**
   * `runid`: the id its run gets (a schedule's tick or a webhook delivery names it, so that one
   * delivered twice starts one run). `trigger`: the forge event that made the version (hooks only).
   */
  async create(dto: ResourceDto, runid?: string, trigger?: TriggerOrigin): Promise<ResourceWriteResult> {
    const [, pipeline] = await inOrder(this.checkSpec(dto.resource, dto.spec), dto.pipeline ? this.pipelineFor(dto.pipeline, dto.resource) : Promise.resolve(undefined));
    if (pipeline) this.runs.checkFits(pipeline, { name: dto.name, resource: dto.resource, spec: dto.spec, metadata: dto.metadata ?? {} });
    runid = pipeline ? (runid ?? newRunId()) : undefined;
    const resource: Resource = {
      name: dto.name,
      resource: dto.resource,
      spec: dto.spec,
      metadata: dto.metadata ?? {},
      version: 1,
      createdAt: new Date().toISOString(),
      ...(pipeline ? { pipeline: pipeline.name, runid } : {}),
      ...(trigger ? { trigger } : {}),
    };
    const saved = await this.resources.create(resource);
    return this.startRun(saved, pipeline, 'created');
  }

  /**
   * A new version. `pipeline` absent keeps the previous version's pipeline, `null` drops it,
   * a name sets it; whenever the new version has a pipeline, a run of it starts. `metadata`
   * absent keeps the previous metadata.
   */
  async update(type: string, name: string, dto: ResourceUpdateDto, ifMatchVersion: number | undefined, runid?: string, trigger?: TriggerOrigin): Promise<ResourceWriteResult> {
    if (dto.name !== undefined && dto.name !== name) {
      throw new BadRequestException(`name "${dto.name}" in the body does not match "${name}" in the path; a resource cannot be renamed`);
    }
    if (dto.resource !== undefined && dto.resource !== type) {
      throw new BadRequestException(`resource "${dto.resource}" in the body does not match type "${type}" in the path; a resource cannot change its type`);
    }
    const [latest] = await inOrder(this.resources.require(type, name), this.checkSpec(type, dto.spec));
    const pipelineName = dto.pipeline === null ? undefined : (dto.pipeline ?? latest.value.pipeline);
    const pipeline = pipelineName ? await this.pipelineFor(pipelineName, type) : undefined;
    if (pipeline) this.runs.checkFits(pipeline, { name, resource: type, spec: dto.spec, metadata: dto.metadata ?? latest.value.metadata });
    runid = pipeline ? (runid ?? newRunId()) : undefined;
    const saved = await this.resources.update(
      type,
      name,
      (cur) => {
        // A version's run and the event that made it are its own: never carried to the next version.
        const { pipeline: _p, runid: _r, trigger: _t, ...rest } = cur;
        return {
          ...rest,
          spec: dto.spec,
          metadata: dto.metadata ?? cur.metadata,
          createdAt: new Date().toISOString(),
          ...(pipeline ? { pipeline: pipeline.name, runid } : {}),
          ...(trigger ? { trigger } : {}),
        };
      },
      ifMatchVersion,
    );
    return this.startRun(saved, pipeline, 'updated');
  }

  /**
   * Starts the run a stored version names (`runid`), for a writer that stopped between writing
   * the version and starting its run (a schedule's tick, a webhook delivery); a run already
   * started is left alone (its start is fenced on an empty run log).
   */
  async startStoredRun(version: Resource, pipelineName: string): Promise<void> {
    const name = version.pipeline ?? pipelineName;
    const pipeline = (await this.catalog.pipeline(name))?.value;
    if (!pipeline) throw new NotFoundException(`pipeline "${name}" not found`);
    if (!version.runid) throw new BadRequestException(`version ${version.version} of resource "${version.name}" names no run`);
    await this.admission.start(version.runid, pipeline, version).catch((err) => {
      if (!(err instanceof ConflictException)) throw err;
    });
  }

  list(type?: string): Promise<Resource[]> {
    return (type ? this.resources.list(type) : this.resources.listAll()).then((all) =>
      all.sort((a, b) => a.resource.localeCompare(b.resource) || a.name.localeCompare(b.name)),
    );
  }

  async get(type: string, name: string): Promise<Resource> {
    return (await this.resources.require(type, name)).value;
  }

  async version(type: string, name: string, version: number): Promise<Resource> {
    const found = await this.resources.version(type, name, version);
    if (found) return found;
    const latest = await this.resources.require(type, name);
    throw new NotFoundException(`resource "${name}" of type "${type}" has no version ${version}; its versions are 1 to ${latest.value.version}`);
  }

  async delete(type: string, name: string, ifMatchVersion: number | undefined): Promise<void> {
    await this.resources.delete(type, name, ifMatchVersion);
  }

  /**
   * What a write of resource `name` of `type` with `spec` for `pipeline` would be refused for,
   * checked now (a schedule is checked when it is saved, as its ticks' writes will be).
   */
  async checkWrite(type: string, name: string, pipelineName: string, spec: JsonObject, metadata: JsonObject = {}): Promise<void> {
    await this.checkSpec(type, spec);
    const pipeline = await this.pipelineFor(pipelineName, type);
    this.runs.checkFits(pipeline, { name, resource: type, spec, metadata });
  }

  private async checkSpec(type: string, spec: JsonObject): Promise<void> {
    const definition = await this.catalog.definition(type);
    if (!definition) throw new BadRequestException(`resource definition "${type}" does not exist`);
    const failures = this.schemas.check(definition.value.schema, spec);
    if (failures.length) {
      throw new BadRequestException({ message: `spec does not match resource definition "${type}": ${failures.join('; ')}`, details: failures });
    }
    await this.secrets.checkRefs(spec);
  }

  private async pipelineFor(name: string, type: string): Promise<Pipeline> {
    const found = await this.catalog.pipeline(name);
    if (!found) throw new BadRequestException(`pipeline "${name}" does not exist`);
    if (found.value.resource !== type) {
      throw new BadRequestException(`pipeline "${name}" builds resources of type "${found.value.resource}", not "${type}"`);
    }
    return found.value;
  }

  private async startRun(saved: Resource, pipeline: Pipeline | undefined, verb: string): Promise<ResourceWriteResult> {
    const what = `resource "${saved.name}" ${verb} (version ${saved.version})`;
    if (!pipeline || !saved.runid) return { name: saved.name, message: what, version: saved.version };
    try {
      await this.admission.start(saved.runid, pipeline, saved);
    } catch (err) {
      this.log.error(`${what}, but run ${saved.runid} could not be started: ${(err as Error).message}`);
      throw new ServiceUnavailableException(
        `${what} and saved, but its run ${saved.runid} could not be started because NATS did not answer for 15 s (${(err as Error).message}); ` +
          `GET /runs/${saved.runid} tells whether it started after all (404: it did not); if not, send the same PUT again to start a new run`,
      );
    }
    return { name: saved.name, runid: saved.runid, message: `${what}; run ${saved.runid} of pipeline "${pipeline.name}" queued`, version: saved.version };
  }
}

/**
 * Two reads made side by side (when they go to NATS, one round trip instead of two), answered as
 * if made one after the other: `first`'s failure is the one reported when both fail, whichever came first.
 */
async function inOrder<A, B>(first: Promise<A>, second: Promise<B>): Promise<[A, B]> {
  // Not left unhandled while `first` is awaited: its failure, if any, is rethrown below.
  second.catch(() => undefined);
  return [await first, await second];
}
