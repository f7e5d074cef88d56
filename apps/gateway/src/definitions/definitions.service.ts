import { BadRequestException, Injectable } from '@nestjs/common';
import type { ResourceDefinition } from '@conveyor/contracts';
import type { ResourceDefinitionDto, ResourceDefinitionUpdateDto } from '../common/request-bodies';
import { ConflictError, DefinitionsStore, PipelinesStore, ResourcesStore, type Versioned } from '@conveyor/store';
import { JsonSchemaService } from '../common/json-schema.service';
import { replaceStored } from '../common/replace';

const WHAT = 'resource definition';

@Injectable()
export class DefinitionsService {
  constructor(
    private readonly definitions: DefinitionsStore,
    private readonly pipelines: PipelinesStore,
    private readonly resources: ResourcesStore,
    private readonly schemas: JsonSchemaService,
  ) {}

  async create(dto: ResourceDefinitionDto): Promise<Versioned<ResourceDefinition>> {
    this.schemas.assertValidSchema(dto.schema);
    const now = new Date().toISOString();
    const value = this.build(dto, dto.name, now, now);
    return { value, revision: await this.definitions.create(dto.name, value) };
  }

  /** Create or update (Conveyor CI's `apply`); `created` tells which one happened. */
  async apply(dto: ResourceDefinitionDto): Promise<Versioned<ResourceDefinition> & { created: boolean }> {
    this.schemas.assertValidSchema(dto.schema);
    for (let attempt = 0; ; attempt++) {
      if (!(await this.definitions.get(dto.name))) {
        try {
          return { ...(await this.create(dto)), created: true };
        } catch (err) {
          // Someone created it in between: update what they made instead.
          if (!(err instanceof ConflictError) || attempt >= 2) throw err;
          continue;
        }
      }
      return { ...(await this.update(dto.name, dto, undefined)), created: false };
    }
  }

  list(): Promise<ResourceDefinition[]> {
    return this.definitions.list().then((all) => all.map((d) => d.value).sort((a, b) => a.name.localeCompare(b.name)));
  }

  get(name: string): Promise<Versioned<ResourceDefinition>> {
    return this.definitions.require(name);
  }

  async update(name: string, dto: ResourceDefinitionUpdateDto, ifMatch: number | undefined): Promise<Versioned<ResourceDefinition>> {
    if (dto.name !== undefined && dto.name !== name) {
      throw new BadRequestException(`name "${dto.name}" in the body does not match "${name}" in the path; a definition cannot be renamed`);
    }
    this.schemas.assertValidSchema(dto.schema);
    const now = new Date().toISOString();
    return replaceStored(this.definitions, WHAT, name, (cur) => this.build(dto, name, cur.createdAt, now), ifMatch);
  }

  /** Refused while a pipeline or a resource still uses the definition: their specs and runs depend on it. */
  async delete(name: string, ifMatch: number | undefined): Promise<void> {
    const cur = await this.definitions.require(name);
    if (ifMatch !== undefined && cur.revision !== ifMatch) {
      throw new ConflictError(`${WHAT} "${name}" was changed since revision ${ifMatch} (it is at revision ${cur.revision}); read it again and retry`);
    }
    const pipelines = (await this.pipelines.list()).filter((p) => p.value.resource === name).map((p) => p.value.name);
    const resources = (await this.resources.list(name)).map((r) => r.name);
    if (pipelines.length || resources.length) {
      const users = [
        pipelines.length ? `pipeline(s) ${pipelines.sort().join(', ')}` : '',
        resources.length ? `resource(s) ${resources.sort().join(', ')}` : '',
      ].filter(Boolean);
      throw new ConflictError(`${WHAT} "${name}" is still used by ${users.join(' and ')}; delete them first`);
    }
    await this.definitions.delete(name, cur.revision);
  }

  private build(dto: ResourceDefinitionUpdateDto, name: string, createdAt: string, updatedAt: string): ResourceDefinition {
    return { name, description: dto.description ?? '', version: dto.version ?? '', schema: dto.schema, createdAt, updatedAt };
  }
}
