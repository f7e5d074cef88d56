import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { NatsConnection } from '@nats-io/transport-node';
import { loadConfig, type ConveyorConfig } from '@conveyor/config';
import { RUN_ID_PATTERN, isTerminalRunStatus, type Run } from '@conveyor/contracts';
import { BuildContainers, LABELS, containerLabelsFromEnv, formatDeadline, type RunContainer } from '@conveyor/docker';
import { connectJetStream, openBuckets } from '@conveyor/jetstream';
import { JsonKv } from '@conveyor/store';
import { Workspaces } from '@conveyor/workspace';

/** The driver whose step makes a run's container (and pins the run to its machine). */
const CONTAINER_START = 'container-start';

/** What the janitor makes of a run's container or workspace on a machine, given the run's record. */
export type Assessment =
  | { keep: true; detail: string }
  | {
      keep: false;
      reason: 'ended' | 'missing' | 'moved';
      detail: string;
    };

/**
 * The rule, as a function of the run's record alone (undefined: the runs bucket has no such run):
 *   - the run ended (succeeded, failed, cancelled): remove, a grace after the janitor first saw it ended;
 *   - the run does not exist (deleted, or never of this installation): remove, a grace after first seen;
 *   - the run is live and any of its steps ran on this machine: keep. That covers the run pinned
 *     here, and errs on the side of keeping when a step of another driver ran here;
 *   - the run is live and its container-start step ran on another machine (a retry that moved
 *     the run): remove, once it has been so for the whole grace;
 *   - the run is live and has no machine yet (its container-start is not recorded as started): keep.
 */
export function assess(run: Run | undefined, machine: string): Assessment {
  if (!run) return { keep: false, reason: 'missing', detail: 'the run no longer exists' };
  if (isTerminalRunStatus(run.status)) {
    // The grace runs from when this janitor first saw the run ended, on its own clock: the
    // record's `finishedAt` is another machine's clock.
    return { keep: false, reason: 'ended', detail: `the run ended (${run.status}${run.finishedAt ? ` at ${run.finishedAt}` : ''})` };
  }
  if (run.steps.some((s) => s.machine === machine)) return { keep: true, detail: `the run is live on machine ${machine}` };
  const elsewhere = [...new Set(run.steps.filter((s) => s.driver === CONTAINER_START && s.machine).map((s) => s.machine as string))];
  if (elsewhere.length === 0) return { keep: true, detail: 'the run is live and not pinned to a machine yet' };
  return { keep: false, reason: 'moved', detail: `the run is live on machine ${elsewhere.join(', ')}` };
}

export interface BuildJanitorOptions {
  containers: BuildContainers;
  workspaces: Workspaces;
  /** The run's record; undefined when the runs bucket has no such run. Throws when it cannot be read. */
  readRun: (runId: string) => Promise<Run | undefined>;
  machine: string;
  /** CONVEYOR_CONTAINER_LABELS: only containers with these labels are this installation's. */
  labels: Record<string, string>;
  graceMs: number;
  log: Pick<Logger, 'log' | 'warn'>;
}

/** What one sweep did: the runs whose leftovers it removed (and why), and those it could not judge. */
export interface SweepReport {
  removed: Array<{ runId: string; containers: string[]; workspace: boolean; detail: string }>;
  unreadable: string[];
}

/**
 * Removes what runs that no longer need this machine left on it: their containers (labelled with
 * the run and this machine, and with this installation's extra labels) and workspace folders.
 * Nothing is removed on a guess: a run whose record cannot be read is left for the next sweep.
 */
export class BuildJanitor {
  /** `<run> <reason>` → when a sweep first found the run's leftovers removable for that reason. */
  private readonly firstSeen = new Map<string, number>();

  constructor(private readonly o: BuildJanitorOptions) {}

  async sweep(now = Date.now()): Promise<SweepReport> {
    const { containers, workspaces, machine, labels, graceMs } = this.o;
    const found = new Map<string, { containers: RunContainer[]; workspace: boolean }>();
    const entry = (runId: string) => found.get(runId) ?? found.set(runId, { containers: [], workspace: false }).get(runId)!;
    for (const c of await containers.listRunContainers({ ...labels, [LABELS.machine]: machine })) {
      if (c.runId && RUN_ID_PATTERN.test(c.runId)) entry(c.runId).containers.push(c);
    }
    for (const w of await workspaces.list()) entry(w.runId).workspace = true;

    const report: SweepReport = { removed: [], unreadable: [] };
    const pending = new Set<string>();
    for (const [runId, leftovers] of found) {
      let run: Run | undefined;
      try {
        run = await this.o.readRun(runId);
      } catch (err) {
        report.unreadable.push(runId);
        this.o.log.warn(`cannot read run ${runId} (${(err as Error).message}): its container and workspace stay until a sweep can`);
        continue;
      }
      const verdict = assess(run, machine);
      if (verdict.keep) continue;
      const key = `${runId} ${verdict.reason}`;
      const first = this.firstSeen.get(key) ?? now;
      this.firstSeen.set(key, first);
      pending.add(key);
      if (now - first < graceMs) continue;
      const removed = await this.remove(runId, leftovers, verdict.detail);
      if (removed) {
        report.removed.push(removed);
        pending.delete(key);
      }
    }
    // A run seen removable before but not now (kept, or gone) starts its grace again next time.
    for (const key of this.firstSeen.keys()) if (!pending.has(key)) this.firstSeen.delete(key);
    return report;
  }

  private async remove(runId: string, leftovers: { containers: RunContainer[]; workspace: boolean }, detail: string): Promise<SweepReport['removed'][number] | undefined> {
    const names: string[] = [];
    try {
      for (const c of leftovers.containers) {
        await this.o.containers.stopAndRemove(c.id);
        names.push(c.name);
      }
      if (leftovers.workspace) await this.o.workspaces.remove(runId);
    } catch (err) {
      this.o.log.warn(`cannot remove what run ${runId} left on machine ${this.o.machine} (${detail}): ${(err as Error).message}; next sweep tries again`);
      return undefined;
    }
    const what = [...names.map((n) => `container ${n}`), ...(leftovers.workspace ? [`workspace ${this.o.workspaces.workspaceFor(runId)}`] : [])].join(' and ');
    this.o.log.log(`removed ${what} of run ${runId}: ${detail} (grace ${formatDeadline(this.o.graceMs)})`);
    return { runId, containers: names, workspace: leftovers.workspace, detail };
  }
}

/** How often the janitor sweeps: twice per grace, at least every second, at most every minute. */
export function sweepIntervalMs(graceMs: number): number {
  return Math.min(60_000, Math.max(1_000, Math.floor(graceMs / 2)));
}

/**
 * The janitor of a build machine, in its container-start agents (they make the containers and
 * workspaces): sweeps at start-up, then every sweepIntervalMs(CONVEYOR_JANITOR_GRACE). It reads
 * runs over a NATS connection of its own (the transport's is not shared with app providers).
 */
@Injectable()
export class JanitorService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log = new Logger('Janitor');
  private nc?: NatsConnection;
  private timer?: NodeJS.Timeout;
  private sweeping?: Promise<unknown>;
  private stopped = false;

  constructor(
    private readonly containers: BuildContainers,
    private readonly workspaces: Workspaces,
  ) {}

  onApplicationBootstrap(): void {
    const config = loadConfig(process.env, { name: 'container-start-janitor' });
    if (config.janitorGraceMs === undefined) {
      this.log.log('off (CONVEYOR_JANITOR_GRACE=off): containers and workspaces are removed by container-stop only');
      return;
    }
    void this.start(config, config.janitorGraceMs);
  }

  private async start(config: ConveyorConfig, graceMs: number): Promise<void> {
    try {
      const ctx = await connectJetStream(config);
      this.nc = ctx.nc;
      if (this.stopped) {
        await ctx.nc.close();
        return;
      }
      // Reads run records only (never lists or makes them), so the bucket itself is enough.
      const runs = new JsonKv<Run>((await openBuckets(ctx)).runs, 'run');
      const janitor = new BuildJanitor({
        containers: this.containers,
        workspaces: this.workspaces,
        readRun: async (id) => (await runs.get(id))?.value,
        machine: config.agent.machine,
        labels: containerLabelsFromEnv(),
        graceMs,
        log: this.log,
      });
      const every = sweepIntervalMs(graceMs);
      this.log.log(`sweeping machine ${config.agent.machine} every ${formatDeadline(every)} (grace ${formatDeadline(graceMs)})`);
      const loop = () => {
        if (this.stopped) return;
        this.sweeping = janitor
          .sweep()
          .catch((err) => this.log.warn(`sweep failed: ${(err as Error).message}`))
          .finally(() => {
            this.sweeping = undefined;
            if (!this.stopped) this.timer = setTimeout(loop, every);
          });
      };
      loop();
    } catch (err) {
      this.log.error(`cannot start: ${(err as Error).message}`);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.sweeping;
    await this.nc?.close().catch(() => undefined);
  }
}
