import { BadRequestException, Injectable } from '@nestjs/common';
import type { HookDeliveryOutcome, Trigger, TriggerEvent } from '@conveyor/contracts';
import type { TriggerDto, TriggerUpdateDto } from '../common/request-bodies';
import { branchesProblem, resourceNameFor, resourceNameProblem, specFor, specTemplateProblem, type HookEvent } from '@conveyor/triggers';
import { ResourcesService } from '../resources/resources.service';
import { SecretsService } from '../secrets/secrets.service';
import { TriggersStore } from './triggers.store';

/** A trigger as the API shows it: with the path its forge posts to and its last delivery. */
export type TriggerView = Omit<Trigger, 'last'> & { hook: string; last: HookDeliveryOutcome | null };

/**
 * Triggers' CRUD. A trigger is checked when it is saved: its secrets are stored, its templates
 * and globs are usable, and a version made from a sample event would be taken (the definition
 * takes the spec, the pipeline exists and builds the type), so a typo is a 400 now rather than
 * a refused delivery later.
 */
@Injectable()
export class TriggersService {
  constructor(
    private readonly store: TriggersStore,
    private readonly resources: ResourcesService,
    private readonly secrets: SecretsService,
  ) {}

  async create(dto: TriggerDto): Promise<TriggerView> {
    const now = new Date().toISOString();
    const trigger = fromDto(dto.name, dto, now, now);
    await this.check(trigger);
    await this.store.create(dto.name, trigger);
    return view(trigger);
  }

  async list(): Promise<TriggerView[]> {
    return (await this.store.list()).map((t) => view(t.value)).sort((a, b) => a.name.localeCompare(b.name));
  }

  async get(name: string): Promise<TriggerView> {
    return view((await this.store.require(name)).value);
  }

  /** Replaces the trigger; its last delivery stays. */
  async update(name: string, dto: TriggerUpdateDto): Promise<TriggerView> {
    if (dto.name !== undefined && dto.name !== name) {
      throw new BadRequestException(`name "${dto.name}" in the body does not match "${name}" in the path; a trigger cannot be renamed`);
    }
    const cur = await this.store.require(name);
    const next = fromDto(name, dto, cur.value.createdAt, new Date().toISOString());
    await this.check(next);
    const saved = await this.store.mutate(name, (c) => ({ ...next, ...(c.last ? { last: c.last } : {}) }));
    return view(saved);
  }

  /** Not fenced on the revision read: deliveries record their outcome in the trigger, and a delete must not lose to them. */
  async delete(name: string): Promise<void> {
    await this.store.require(name);
    await this.store.delete(name);
  }

  private async check(t: Trigger): Promise<void> {
    const problem =
      resourceNameProblem(t.resourceName) ??
      specTemplateProblem(t.spec) ??
      (t.branches ? branchesProblem(t.branches) : undefined) ??
      (t.status ? statusProblem(t) : undefined);
    if (problem) throw new BadRequestException(problem);
    await this.secrets.requireStored([t.secret, ...(t.status ? [t.status.token] : [])], 'trigger');
    const sample = sampleEvent(t);
    await this.resources.checkWrite(t.resource, resourceNameFor(t, sample), t.pipeline, specFor(t, sample));
  }
}

function fromDto(name: string, dto: TriggerUpdateDto, createdAt: string, updatedAt: string): Trigger {
  return {
    name,
    source: dto.source,
    secret: dto.secret,
    ...(dto.repository ? { repository: dto.repository.trim() } : {}),
    events: [...new Set<TriggerEvent>(dto.events ?? ['push'])],
    ...(dto.branches?.length ? { branches: dto.branches } : {}),
    resource: dto.resource,
    pipeline: dto.pipeline,
    resourceName: dto.resourceName ?? name,
    spec: dto.spec ?? {},
    ...(dto.status ? { status: { ...dto.status } } : {}),
    createdAt,
    updatedAt,
  };
}

function statusProblem(t: Trigger): string | undefined {
  const s = t.status!;
  let url: URL;
  try {
    url = new URL(s.api);
  } catch {
    return `status.api ${JSON.stringify(s.api)} is not a URL`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'status.api must be an http or https URL';
  if (url.username || url.password) return 'status.api must not hold credentials: name the token in status.token';
  if (!s.forge && t.source === 'generic') return 'status.forge (github, gitea or gitlab) is needed for a generic trigger: its events do not say which forge they came from';
  return undefined;
}

/** An event as the trigger could receive it, for checking what version it would make. */
function sampleEvent(t: Trigger): HookEvent {
  const urlLike = t.repository && /^([a-z][a-z0-9+.-]*:\/\/|[^@\s/]+@[^:\s]+:|\/)/i.test(t.repository);
  const event = t.events[0];
  return {
    event,
    delivery: 'sample',
    repository: urlLike ? t.repository! : 'https://git.example.invalid/sample/repository.git',
    ref: event === 'tag' ? 'refs/tags/v1.0.0' : event === 'pull_request' ? 'refs/pull/1/head' : 'refs/heads/main',
    branch: event === 'tag' ? 'v1.0.0' : 'main',
    commit: '0123456789abcdef0123456789abcdef01234567',
    sender: 'sample',
    message: 'sample',
  };
}

export function view(t: Trigger): TriggerView {
  return { ...t, hook: `/hooks/${t.name}`, last: t.last ?? null };
}
