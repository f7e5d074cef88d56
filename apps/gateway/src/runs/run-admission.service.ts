import { forwardRef, Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { KV } from '@nats-io/kv';
import { isTerminalRunStatus, type Pipeline, type Resource, type Run } from '@conveyor/contracts';
import { JETSTREAM, isNotFound, openGroupsBucket, type JetStreamContext } from '@conveyor/jetstream';
import { newRun, pipelineOfRun, renderGroup } from '@conveyor/runs';
import { ConflictError, ResourcesStore, RunsStore } from '@conveyor/store';
import { PeriodicCheck } from '../common/periodic-check';
import { RunStarter } from './run-starter.service';
import { RunsService } from './runs.service';

/** Who holds a concurrency group, and who waits for it, in order. */
interface GroupEntry {
  group: string;
  holder?: string;
  queue: string[];
}

/**
 * Concurrency groups (a pipeline's `concurrency`): at most one run of a group runs. A run whose
 * group is held waits `queued`, with the reason, in order; with `cancelInProgress` it cancels the
 * holder (and drops those queued) and is next. The group's state is one key of the groups
 * bucket, changed only by compare-and-set, so two gateways admitting at once cannot both take
 * it. When the holder's run ends (the projector folds its end) the next one starts; a check
 * every CONVEYOR_RECONCILE_INTERVAL hands on a group whose holder ended while no gateway saw it.
 */
@Injectable()
export class RunAdmission implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger(RunAdmission.name);
  private groups?: KV;
  private checks?: PeriodicCheck;

  constructor(
    @Inject(JETSTREAM) private readonly ctx: JetStreamContext,
    private readonly runs: RunsStore,
    private readonly resources: ResourcesStore,
    private readonly starter: RunStarter,
    @Inject(forwardRef(() => RunsService)) private readonly runsService: RunsService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bucket();
    this.checks = new PeriodicCheck('concurrency group check', this.ctx.config.reconcileIntervalMs, () => this.check(), this.log);
  }

  async onModuleDestroy(): Promise<void> {
    await this.checks?.stop();
  }

  /** Starts a run of `pipeline`, or queues it behind the run that holds its concurrency group. */
  async start(runId: string, pipeline: Pipeline, resource: Resource, links: Pick<Run, 'rerunOf'> = {}): Promise<Run> {
    if (!pipeline.concurrency) return this.starter.start(runId, pipeline, resource, links);
    const group = renderGroup(pipeline.concurrency.group, pipeline.name, { type: resource.resource, name: resource.name, spec: resource.spec });
    // The record first: a queue never names a run that has none.
    const run: Run = { ...newRun(runId, pipeline, resource), ...links, group };
    await this.runs.create(runId, run).catch((err) => {
      if (!(err instanceof ConflictError)) throw err;
    });
    let cancel: string[] = [];
    const entry = await this.change(group, (e) => {
      if (!e.holder || e.holder === runId) return { ...e, holder: runId, queue: e.queue.filter((q) => q !== runId) };
      if (e.queue.includes(runId)) return e;
      if (pipeline.concurrency!.cancelInProgress) {
        cancel = [e.holder, ...e.queue];
        return { ...e, queue: [runId] };
      }
      return { ...e, queue: [...e.queue, runId] };
    });
    if (entry.holder === runId) return this.starter.start(runId, pipeline, resource, { ...links, group });
    const why = `queued: run ${entry.holder} of concurrency group "${group}" is running${entry.queue.length > 1 ? ` (${entry.queue.indexOf(runId)} queued before this one)` : ''}`;
    const queued = await this.runs.mutate(runId, (r) => (r.status === 'queued' ? { ...r, message: why } : undefined));
    for (const id of cancel) await this.cancel(id, `cancelled by run ${runId} of concurrency group "${group}" (cancelInProgress)`);
    this.log.log(`run ${runId}: ${why}`);
    return queued;
  }

  /** The run holding `group` ended (or was cancelled while queued): the next one starts. */
  async release(group: string, runId: string): Promise<void> {
    let next: string | undefined;
    const entry = await this.change(group, (e) => {
      if (e.holder !== runId) return { ...e, queue: e.queue.filter((q) => q !== runId) };
      next = e.queue[0];
      return { ...e, holder: next, queue: e.queue.slice(1) };
    });
    if (next && entry.holder === next) await this.startQueued(group, next);
  }

  private async startQueued(group: string, runId: string): Promise<void> {
    const run = (await this.runs.get(runId))?.value;
    if (!run || isTerminalRunStatus(run.status)) return this.release(group, runId);
    const resource = await this.resources.version(run.resource.type, run.resource.name, run.resource.version);
    if (!resource) {
      await this.runs.mutate(runId, (r) => ({ ...r, status: 'failed', message: `its resource version ${run.resource.version} is no longer stored; it could not start`, finishedAt: new Date().toISOString() }));
      return this.release(group, runId);
    }
    await this.runs.mutate(runId, (r) => {
      const { message: _, ...rest } = r;
      return rest;
    });
    this.log.log(`run ${runId}: concurrency group "${group}" is free; starting`);
    await this.starter.start(runId, pipelineOfRun(run), resource, { group });
  }

  /** A queued run is cancelled where it waits (it never started); a running one like any cancel. */
  async cancel(runId: string, message: string): Promise<void> {
    const run = (await this.runs.get(runId))?.value;
    if (!run || isTerminalRunStatus(run.status)) return;
    const entry = run.group ? await this.read(run.group) : undefined;
    if (run.group && entry?.queue.includes(runId)) {
      await this.runs.mutate(runId, (r) => (r.status === 'queued' ? { ...r, status: 'cancelled', message, cancelRequested: true, finishedAt: new Date().toISOString() } : undefined));
      await this.release(run.group, runId);
      return;
    }
    await this.runsService.cancel(runId).catch((err) => this.log.warn(`run ${runId}: could not cancel it: ${(err as Error).message}`));
  }

  /** Whether a run waits in its group's queue (it has not started: a cancel ends it where it waits). */
  async isQueued(run: Run): Promise<boolean> {
    return !!run.group && !!(await this.read(run.group))?.queue.includes(run.id);
  }

  /** Hands on every group whose holder ended while no gateway saw it (or has no record). */
  async check(): Promise<void> {
    const kv = await this.bucket();
    for await (const key of await kv.keys()) {
      const e = await kv.get(key);
      if (!e || e.operation !== 'PUT') continue;
      const entry = e.json<GroupEntry>();
      if (!entry.holder) continue;
      const holder = (await this.runs.get(entry.holder))?.value;
      if (!holder || isTerminalRunStatus(holder.status)) await this.release(entry.group, entry.holder);
    }
  }

  private async read(group: string): Promise<GroupEntry | undefined> {
    const e = await (await this.bucket()).get(keyOf(group));
    return e && e.operation === 'PUT' ? e.json<GroupEntry>() : undefined;
  }

  /** Compare-and-set on the group's key. */
  private async change(group: string, f: (e: GroupEntry) => GroupEntry): Promise<GroupEntry> {
    const kv = await this.bucket();
    const key = keyOf(group);
    for (let i = 0; i < 50; i++) {
      const cur = await kv.get(key);
      const live = cur && cur.operation === 'PUT';
      const next = f(live ? cur.json<GroupEntry>() : { group, queue: [] });
      try {
        if (live) await kv.update(key, JSON.stringify(next), cur.revision);
        else await kv.create(key, JSON.stringify(next));
        return next;
      } catch (err) {
        if (isNotFound(err)) continue;
        if (!/wrong last sequence|key exists/i.test((err as Error).message)) throw err;
      }
    }
    throw new ConflictError(`concurrency group "${group}" is being changed too often; try again`);
  }

  private async bucket(): Promise<KV> {
    this.groups ??= await openGroupsBucket(this.ctx);
    return this.groups;
  }
}

/** A KV key for any group name (base64url: keys take only some characters). */
function keyOf(group: string): string {
  return Buffer.from(group, 'utf8').toString('base64url') || '_';
}
