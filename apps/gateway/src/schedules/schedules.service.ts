import { BadRequestException, Injectable } from '@nestjs/common';
import type { Schedule, ScheduleTickOutcome } from '@conveyor/contracts';
import type { ScheduleDto, ScheduleUpdateDto } from '../common/request-bodies';
import { cronError, nextDue } from '@conveyor/schedules';
import { ResourcesService } from '../resources/resources.service';
import { SchedulesStore } from './schedules.store';

/** A schedule as the API shows it: with its next due time and its last tick. */
export type ScheduleView = Omit<Schedule, 'last'> & { next: string | null; last: ScheduleTickOutcome | null };

/**
 * Schedules' CRUD. A schedule is checked when it is saved as its ticks' resource writes will
 * be (the definition takes the spec, the pipeline exists and builds the type); the gateways'
 * ScheduleTimers watch the bucket, so a change on one gateway is timed by all.
 */
@Injectable()
export class SchedulesService {
  constructor(
    private readonly store: SchedulesStore,
    private readonly resources: ResourcesService,
  ) {}

  async create(dto: ScheduleDto): Promise<ScheduleView> {
    const resourceName = dto.resourceName ?? dto.name;
    await this.check(dto, resourceName);
    const now = new Date().toISOString();
    const schedule: Schedule = {
      name: dto.name,
      cron: dto.cron.trim(),
      ...(dto.timezone !== undefined ? { timezone: dto.timezone } : {}),
      resource: dto.resource,
      pipeline: dto.pipeline,
      resourceName,
      spec: dto.spec,
      createdAt: now,
      updatedAt: now,
      since: now,
    };
    await this.store.create(dto.name, schedule);
    return view(schedule);
  }

  async list(): Promise<ScheduleView[]> {
    const all = await this.store.list();
    return all.map((s) => view(s.value)).sort((a, b) => a.name.localeCompare(b.name));
  }

  async get(name: string): Promise<ScheduleView> {
    return view((await this.store.require(name)).value);
  }

  /** Replaces the schedule; its last tick stays, and a changed cron or zone is due only from now on. */
  async update(name: string, dto: ScheduleUpdateDto): Promise<ScheduleView> {
    if (dto.name !== undefined && dto.name !== name) {
      throw new BadRequestException(`name "${dto.name}" in the body does not match "${name}" in the path; a schedule cannot be renamed`);
    }
    await this.store.require(name);
    const resourceName = dto.resourceName ?? name;
    await this.check(dto, resourceName);
    const now = new Date().toISOString();
    const saved = await this.store.mutate(name, (cur) => {
      const cron = dto.cron.trim();
      const retimed = cron !== cur.cron || dto.timezone !== cur.timezone;
      const { timezone: _tz, ...rest } = cur;
      return {
        ...rest,
        cron,
        ...(dto.timezone !== undefined ? { timezone: dto.timezone } : {}),
        resource: dto.resource,
        pipeline: dto.pipeline,
        resourceName,
        spec: dto.spec,
        updatedAt: now,
        since: retimed ? now : cur.since,
      };
    });
    return view(saved);
  }

  /** Not fenced on the revision read: the tick runner records every tick's outcome in the schedule, and a delete must not lose to it. */
  async delete(name: string): Promise<void> {
    await this.store.require(name);
    await this.store.delete(name);
  }

  private async check(dto: ScheduleUpdateDto, resourceName: string): Promise<void> {
    const bad = cronError(dto.cron, dto.timezone);
    if (bad) throw new BadRequestException(bad);
    await this.resources.checkWrite(dto.resource, resourceName, dto.pipeline, dto.spec);
  }
}

function view(s: Schedule, now = new Date()): ScheduleView {
  return { ...s, next: nextDue(s, now)?.toISOString() ?? null, last: s.last ?? null };
}
