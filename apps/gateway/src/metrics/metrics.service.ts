import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import type { KV } from '@nats-io/kv';
import type { AgentInfo, RunRecord } from '@conveyor/contracts';
import { JETSTREAM, openAgentsBucket, stepQueues, type JetStreamContext, type StepQueue, liveAgents } from '@conveyor/jetstream';
import { DEFAULT_METRICS_OPTIONS, STEP_DURATION_BUCKETS, metricsText } from '@conveyor/metrics';
import { RunsStore } from '@conveyor/store';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Runs looked at for the runs-by-status gauge (the newest ones). */
const RUNS_SCANNED = 5000;
/** Run id -> pipeline, so runs' ends (which do not carry the pipeline) can be labelled without a read each time. */
const PIPELINE_CACHE = 2000;

/**
 * The gateway's Prometheus metrics. Counters and the step histogram come from the records of
 * runs' logs as the run projector folds them (`observe`); gauges are read at scrape time from the runs
 * bucket, the step consumers and the agents bucket, so they are right whichever gateway is asked.
 */
@Injectable()
export class MetricsService implements OnModuleInit {
  readonly registry = new Registry();
  private readonly log = new Logger('Metrics');
  private agents?: KV;
  private readonly pipelines = new Map<string, string>();
  /** The step queues as read for the scrape under way. */
  private queues: StepQueue[] = [];
  private readonly runEvents: Counter<'pipeline' | 'status'>;
  private readonly stepDuration: Histogram<'driver' | 'outcome'>;
  private readonly scheduleTicks: Counter<'schedule' | 'outcome'>;
  private readonly hookDeliveries: Counter<'trigger' | 'outcome'>;
  private readonly reports: Counter<'kind' | 'outcome'>;

  constructor(
    @Inject(JETSTREAM) private readonly ctx: JetStreamContext,
    private readonly runs: RunsStore,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, ...DEFAULT_METRICS_OPTIONS });
    this.runEvents = new Counter({
      name: 'conveyor_runs_total',
      help: 'Runs that reached a status (queued, succeeded, failed, cancelled), by pipeline',
      labelNames: ['pipeline', 'status'],
      registers,
    });
    this.scheduleTicks = new Counter({
      name: 'conveyor_schedule_ticks_total',
      help: "Schedules' ticks taken by this gateway: started (a run), refused (the resource write was refused; see the schedule's last), skipped (the schedule is gone)",
      labelNames: ['schedule', 'outcome'],
      registers,
    });
    this.hookDeliveries = new Counter({
      name: 'conveyor_hook_deliveries_total',
      help: "Webhook deliveries answered by this gateway, by trigger and outcome (started, duplicate, ignored, refused: a bad signature or payload, rejected: the trigger's resource or pipeline refused the version)",
      labelNames: ['trigger', 'outcome'],
      registers,
    });
    this.reports = new Counter({
      name: 'conveyor_reports_total',
      help: 'Commit statuses and notifications tried by this gateway, by kind and outcome (delivered, retried: failed and tried again later, failed: given up on)',
      labelNames: ['kind', 'outcome'],
      registers,
    });
    this.stepDuration = new Histogram({
      name: 'conveyor_step_duration_seconds',
      help: 'Duration of step attempts that ended, by driver and outcome',
      labelNames: ['driver', 'outcome'],
      buckets: STEP_DURATION_BUCKETS,
      registers,
    });
    const self = this;
    new Gauge({
      name: 'conveyor_runs',
      help: `Stored runs by pipeline and current status (the newest ${RUNS_SCANNED})`,
      labelNames: ['pipeline', 'status'],
      registers,
      async collect() {
        this.reset();
        for (const run of await self.runs.recent(RUNS_SCANNED)) this.inc({ pipeline: run.pipeline.name, status: run.status });
      },
    });
    // Both queue gauges show one read of the step queues, made once per scrape (metrics()).
    const queueGauge = (name: string, help: string, value: (q: StepQueue) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['driver', 'machine'],
        registers,
        collect() {
          this.reset();
          for (const q of self.queues) this.set({ driver: q.driver, machine: q.machine ?? '' }, value(q));
        },
      });
    queueGauge('conveyor_queue_pending', "Step messages waiting for a driver's agents (its consumer's num_pending), by driver and pinned machine", (q) => q.pending);
    queueGauge('conveyor_queue_in_progress', 'Step messages delivered to an agent and not yet acked, by driver and pinned machine', (q) => q.ackPending);
    new Gauge({
      name: 'conveyor_agents',
      help: 'Live driver agents (heartbeat within three intervals), by driver and machine',
      labelNames: ['driver', 'machine'],
      registers,
      async collect() {
        this.reset();
        for (const a of await self.liveAgents()) for (const d of a.drivers) this.inc({ driver: d, machine: a.machine });
      },
    });
  }

  async onModuleInit(): Promise<void> {
    this.agents = await openAgentsBucket(this.ctx);
  }

  /**
   * Counts what one record of a run's log says, as the run projector folds it (each record is
   * folded by one gateway: sum the copies): a run queued (its first work) or ended, a step
   * attempt that ended. Fed by the projector, so the records are read and decoded once.
   */
  /** A schedule's tick taken by this gateway's tick runner (counted by one gateway of several: sum them). */
  tick(schedule: string, outcome: 'started' | 'refused' | 'skipped'): void {
    this.scheduleTicks.inc({ schedule, outcome });
  }

  /** A webhook delivery answered by this gateway (unknown trigger names are not counted: anyone can make them up). */
  hook(trigger: string, outcome: 'started' | 'duplicate' | 'ignored' | 'refused' | 'rejected'): void {
    this.hookDeliveries.inc({ trigger, outcome });
  }

  /** A try of a commit status or notification (see the gateway's reports). */
  report(kind: 'status' | 'notification', outcome: 'delivered' | 'retried' | 'failed'): void {
    this.reports.inc({ kind, outcome });
  }

  observe(record: RunRecord): void {
    void this.count(record).catch((error: Error) => this.log.warn(`could not count a ${record.kind} record: ${error.message}`));
  }


  /** Counts what one record of a run's log says: a run queued (its first work) or ended, a step attempt that ended. */
  private async count(record: RunRecord): Promise<void> {
    const from = record.kind === 'work' ? record.msg.from : record.kind === 'end' ? record.end.from : undefined;
    if (from && (from.status === 'succeeded' || from.status === 'failed') && typeof from.durationMs === 'number') {
      this.stepDuration.observe({ driver: from.driver ?? 'unknown', outcome: from.status }, from.durationMs / 1000);
    }
    if (record.kind === 'work') {
      this.remember(record.msg.runId, record.msg.pipeline.name);
      if (record.msg.stepIndex === 0 && !record.msg.from) this.runEvents.inc({ pipeline: record.msg.pipeline.name, status: 'queued' });
    } else if (record.kind === 'end') {
      this.runEvents.inc({ pipeline: await this.pipelineOf(record.end.runId), status: record.end.status });
    }
  }

  private remember(runId: string, pipeline: string): void {
    if (this.pipelines.has(runId)) return;
    if (this.pipelines.size >= PIPELINE_CACHE) this.pipelines.delete(this.pipelines.keys().next().value as string);
    this.pipelines.set(runId, pipeline);
  }

  private async pipelineOf(runId: string): Promise<string> {
    const known = this.pipelines.get(runId);
    if (known) return known;
    const run = await this.runs.get(runId);
    const name = run?.value.pipeline.name ?? 'unknown';
    this.remember(runId, name);
    return name;
  }

  private async liveAgents(): Promise<AgentInfo[]> {
    if (!this.agents) return [];
    return liveAgents(this.agents);
  }

  async metrics(): Promise<string> {
    this.queues = await stepQueues(this.ctx);
    return metricsText(this.registry);
  }
}
