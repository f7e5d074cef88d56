import { BadRequestException, Injectable } from '@nestjs/common';
import { APPROVAL_DRIVER, PROJECTOR_CONSUMER, type Pipeline } from '@conveyor/contracts';
import { type PipelineDto, type PipelineUpdateDto } from '../common/request-bodies';
import { conditionProblem, expandMatrices, groupTemplateProblem, resolveNeeds } from '@conveyor/runs';
import { ConflictError, DefinitionsStore, PipelinesStore, ResourcesStore, type Versioned } from '@conveyor/store';
import { replaceStored } from '../common/replace';
import { SecretsService } from '../secrets/secrets.service';

const WHAT = 'pipeline';

@Injectable()
export class PipelinesService {
  constructor(
    private readonly pipelines: PipelinesStore,
    private readonly definitions: DefinitionsStore,
    private readonly resources: ResourcesStore,
    private readonly secrets: SecretsService,
  ) {}

  async create(dto: PipelineDto): Promise<Versioned<Pipeline>> {
    await this.check(dto);
    const now = new Date().toISOString();
    const value = build(dto, dto.name, now, now);
    return { value, revision: await this.pipelines.create(dto.name, value) };
  }

  list(): Promise<Pipeline[]> {
    return this.pipelines.list().then((all) => all.map((p) => p.value).sort((a, b) => a.name.localeCompare(b.name)));
  }

  get(name: string): Promise<Versioned<Pipeline>> {
    return this.pipelines.require(name);
  }

  async update(name: string, dto: PipelineUpdateDto, ifMatch: number | undefined): Promise<Versioned<Pipeline>> {
    if (dto.name !== undefined && dto.name !== name) {
      throw new BadRequestException(`name "${dto.name}" in the body does not match "${name}" in the path; a pipeline cannot be renamed`);
    }
    await this.check(dto);
    const now = new Date().toISOString();
    return replaceStored(this.pipelines, WHAT, name, (cur) => build(dto, name, cur.createdAt, now), ifMatch);
  }

  /**
   * Refused while the latest version of a resource names the pipeline: its next PUT would
   * start a run of it. Runs already started keep their own copy of the pipeline.
   */
  async delete(name: string, ifMatch: number | undefined): Promise<void> {
    const cur = await this.pipelines.require(name);
    if (ifMatch !== undefined && cur.revision !== ifMatch) {
      throw new ConflictError(`${WHAT} "${name}" was changed since revision ${ifMatch} (it is at revision ${cur.revision}); read it again and retry`);
    }
    const users = (await this.resources.listAll()).filter((r) => r.pipeline === name).map((r) => r.name);
    if (users.length) throw new ConflictError(`${WHAT} "${name}" is still used by resource(s) ${users.sort().join(', ')}; delete them or move them to another pipeline first`);
    await this.pipelines.delete(name, cur.revision);
  }

  /** What class-validator cannot see: unique step ids, needs that form a graph, and an existing resource definition. */
  private async check(dto: PipelineUpdateDto): Promise<void> {
    const seen = new Set<string>();
    for (const [i, step] of dto.steps.entries()) {
      if (seen.has(step.id)) throw new BadRequestException(`steps.${i}.id "${step.id}" is used by an earlier step; step ids must be unique`);
      if (step.driver === APPROVAL_DRIVER && !step.approval) throw new BadRequestException(`steps.${i}.driver "${step.driver}" is reserved for approval steps (set "approval": true)`);
      if (step.driver === PROJECTOR_CONSUMER) throw new BadRequestException(`steps.${i}.driver "${step.driver}" is reserved (the gateway's consumer of the runs stream has that name); name the driver otherwise`);
      seen.add(step.id);
    }
    const at = (id: string) => dto.steps.findIndex((s) => s.id === id);
    const refuse = (problems: Array<{ stepId: string; message: string }>) => {
      if (problems.length) throw new BadRequestException(problems.map((p) => `steps.${at(p.stepId)} ("${p.stepId}") ${p.message}`).join('; '));
    };
    refuse(resolveNeeds(dto.steps).problems);
    for (const [i, step] of dto.steps.entries()) {
      if (step.maxParallel !== undefined && !step.matrix) throw new BadRequestException(`steps.${i} ("${step.id}") has maxParallel but no matrix`);
      const bad = step.when && conditionProblem(step.when);
      if (bad) throw new BadRequestException(`steps.${i} ("${step.id}") ${bad}`);
    }
    const group = dto.concurrency && groupTemplateProblem(dto.concurrency.group);
    if (group) throw new BadRequestException(group);
    // The run's steps are the expansion: its limits and ids are checked now, not when a run starts.
    refuse(expandMatrices(dto.steps).problems);
    for (const [i, n] of (dto.notify ?? []).entries()) {
      const bad = notifyUrlProblem(n.url);
      if (bad) throw new BadRequestException(`notify.${i}.url ${bad}`);
    }
    if (!(await this.definitions.get(dto.resource))) {
      throw new BadRequestException(`resource definition "${dto.resource}" does not exist`);
    }
    const secrets = (dto.notify ?? []).flatMap((n) => (n.secret ? [n.secret] : []));
    if (secrets.length) await this.secrets.requireStored(secrets, 'pipeline\'s notify');
  }
}

function build(dto: PipelineUpdateDto, name: string, createdAt: string, updatedAt: string): Pipeline {
  const steps = dto.steps.map((s) => {
    const step: Pipeline['steps'][number] = { id: s.id, name: s.name, driver: s.driver };
    if (s.timeout !== undefined) step.timeout = s.timeout;
    if (s.retries !== undefined) step.retries = s.retries;
    if (s.always !== undefined) step.always = s.always;
    if (s.config !== undefined) step.config = s.config;
    if (s.needs !== undefined) step.needs = s.needs;
    if (s.matrix !== undefined) step.matrix = s.matrix;
    if (s.maxParallel !== undefined) step.maxParallel = s.maxParallel;
    if (s.when !== undefined) step.when = s.when;
    if (s.approval !== undefined) step.approval = s.approval;
    return step;
  });
  const notify = dto.notify?.map((n) => ({ url: n.url, on: [...new Set(n.on)], ...(n.secret ? { secret: n.secret } : {}) }));
  const concurrency = dto.concurrency && { group: dto.concurrency.group, ...(dto.concurrency.cancelInProgress !== undefined ? { cancelInProgress: dto.concurrency.cancelInProgress } : {}) };
  return { name, description: dto.description ?? '', resource: dto.resource, steps, ...(dto.failFast !== undefined ? { failFast: dto.failFast } : {}), ...(concurrency ? { concurrency } : {}), ...(notify?.length ? { notify } : {}), createdAt, updatedAt };
}

/** Why a notification URL is refused: not http(s), or credentials in it (a signing secret is named, not written in the URL). */
function notifyUrlProblem(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `${JSON.stringify(raw)} is not a URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http or https URL';
  if (url.username || url.password) return 'must not hold credentials: name a stored secret in "secret" to sign the body';
  return undefined;
}
