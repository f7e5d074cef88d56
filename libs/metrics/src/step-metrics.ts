import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * prom-client's process metrics, with the event loop's delay sampled once a second instead of
 * every 10 ms (its default): that timer woke an idle agent 100 times a second and was most of
 * its idle CPU (0.77% of a core down to 0.27%, measured over 40 s after start-up); lag that
 * matters lasts longer than a second.
 */
export const DEFAULT_METRICS_OPTIONS = { eventLoopMonitoringPrecision: 1000 } as const;

/**
 * The registry's exposition text, with prom-client's `Nan` written as the format's `NaN`: the
 * event loop's delay has no sample in a scrape less than a second after the one before (or after
 * start-up), and strict parsers refuse `Nan`.
 */
export async function metricsText(registry: Registry): Promise<string> {
  return (await registry.metrics()).replace(/ Nan$/gm, ' NaN');
}

/** Seconds: from a quick check to a long build. */
export const STEP_DURATION_BUCKETS = [0.05, 0.25, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600];

export type StepOutcome = 'succeeded' | 'failed';

/** What a driver agent reports about the steps it runs. */
export class AgentStepMetrics {
  readonly duration: Histogram<'driver' | 'outcome'>;
  readonly running: Gauge<'driver'>;
  readonly started: Counter<'driver'>;

  constructor(registry: Registry) {
    this.duration = new Histogram({
      name: 'conveyor_agent_step_duration_seconds',
      help: 'Time this agent spent in step handlers, by driver and outcome',
      labelNames: ['driver', 'outcome'],
      buckets: STEP_DURATION_BUCKETS,
      registers: [registry],
    });
    this.running = new Gauge({ name: 'conveyor_agent_running_steps', help: 'Steps this agent is running now', labelNames: ['driver'], registers: [registry] });
    this.started = new Counter({ name: 'conveyor_agent_steps_started_total', help: 'Step attempts this agent started', labelNames: ['driver'], registers: [registry] });
  }

  /** Call when a step attempt starts; call the returned function once with its outcome. */
  start(driver: string): (outcome: StepOutcome) => void {
    const t0 = process.hrtime.bigint();
    this.started.inc({ driver });
    this.running.inc({ driver });
    let done = false;
    return (outcome) => {
      if (done) return;
      done = true;
      this.running.dec({ driver });
      this.duration.observe({ driver, outcome }, Number(process.hrtime.bigint() - t0) / 1e9);
    };
  }
}
