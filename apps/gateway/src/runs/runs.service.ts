import { Inject, Injectable, Logger } from '@nestjs/common';
import { type Run, type RunStatus, isTerminalRunStatus } from '@conveyor/contracts';
import { BUCKETS, JETSTREAM, type Buckets, type JetStreamContext } from '@conveyor/jetstream';
import { ConflictError, RunsStore, type RunsPage, type Versioned } from '@conveyor/store';

export interface RunFilter {
  pipeline?: string;
  status?: RunStatus;
  resource?: string;
  type?: string;
  limit: number;
}

@Injectable()
export class RunsService {
  private readonly log = new Logger(RunsService.name);

  constructor(
    private readonly runs: RunsStore,
    @Inject(JETSTREAM) private readonly ctx: JetStreamContext,
    @Inject(BUCKETS) private readonly buckets: Buckets,
  ) {}

  /**
   * The newest runs: without a filter it reads `limit` run records; with one, at most
   * CONVEYOR_RUNS_LIST_SCAN of the newest (`partial` when it stopped there).
   */
  list(f: RunFilter): Promise<RunsPage> {
    const filtered = Boolean(f.pipeline || f.status || f.resource || f.type);
    const filter = (r: Run) =>
      (!f.pipeline || r.pipeline.name === f.pipeline) &&
      (!f.status || r.status === f.status) &&
      (!f.resource || r.resource.name === f.resource) &&
      (!f.type || r.resource.type === f.type);
    return this.runs.page(f.limit, { filter: filtered ? filter : undefined, maxScan: this.ctx.config.http.runsListScan });
  }

  get(id: string): Promise<Versioned<Run>> {
    return this.runs.require(id);
  }

  /**
   * Marks the run as cancel-requested (drivers check the flag before they start a step) and
   * tells the agent running a step right now, over core NATS, to abort it. The run ends as
   * `cancelled` when its cleanup steps have run and the last driver publishes the event.
   */
  async cancel(id: string): Promise<Run> {
    const ended = (r: Run) => new ConflictError(`run ${id} already ended (${r.status}); there is nothing to cancel`);
    const before = await this.runs.require(id);
    if (isTerminalRunStatus(before.value.status)) throw ended(before.value);
    const run = await this.runs.mutate(id, (r) => (isTerminalRunStatus(r.status) || r.cancelRequested ? undefined : { ...r, cancelRequested: true }));
    if (isTerminalRunStatus(run.status)) throw ended(run);
    // Durable first (agents watch this bucket, so a step still queued is skipped when it
    // comes up), then the signal that aborts a step already running.
    await this.buckets.cancels.put(id, JSON.stringify({ at: new Date().toISOString() }));
    this.ctx.nc.publish(this.ctx.subjects.cancel(id), JSON.stringify({ runId: id, at: new Date().toISOString() }));
    this.log.log(`cancel requested for run ${id}`);
    return run;
  }
}
