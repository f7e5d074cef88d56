import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { startMetricsServer, type MetricsServer } from './metrics-server';
import { AgentStepMetrics, DEFAULT_METRICS_OPTIONS } from './step-metrics';
import { AgentStoreMetrics } from './store-metrics';

export interface AgentIdentity {
  agent: string;
  machine: string;
  name: string;
}

/**
 * The metrics of one driver agent: process metrics, an info gauge naming the agent, and its
 * steps (timed by the SDK's step runner around every `@HandleStep` call).
 */
export class AgentMetrics {
  readonly registry = new Registry();
  readonly steps: AgentStepMetrics;
  readonly stores: AgentStoreMetrics;
  private state: 'starting' | 'serving' | 'draining' = 'starting';

  constructor(readonly identity: AgentIdentity) {
    collectDefaultMetrics({ register: this.registry, ...DEFAULT_METRICS_OPTIONS });
    this.registry.setDefaultLabels({ agent: identity.agent, machine: identity.machine });
    new Gauge({ name: 'conveyor_agent_info', help: 'Always 1; labels name the agent', labelNames: ['app'], registers: [this.registry] }).set({ app: identity.name }, 1);
    this.steps = new AgentStepMetrics(this.registry);
    this.stores = new AgentStoreMetrics(this.registry);
  }

  serving(): void {
    this.state = 'serving';
  }

  draining(): void {
    this.state = 'draining';
  }

  /** `/metrics` and `/health` on `port`, or nothing when the port is 0/unset (CONVEYOR_METRICS_PORT). */
  async serve(port: number | undefined, host?: string): Promise<MetricsServer | undefined> {
    if (!port) return undefined;
    return startMetricsServer({
      port,
      host,
      registry: this.registry,
      health: () => ({ ok: this.state === 'serving', state: this.state, ...this.identity }),
    });
  }
}

/**
 * CONVEYOR_METRICS_PORT (0 or unset: no metrics server) and CONVEYOR_METRICS_HOST (default
 * 127.0.0.1; 0.0.0.0 to let a Prometheus on another machine scrape it).
 */
export function metricsAddress(env: Record<string, string | undefined>): { port?: number; host: string } {
  const host = env.CONVEYOR_METRICS_HOST?.trim() || '127.0.0.1';
  const raw = env.CONVEYOR_METRICS_PORT?.trim();
  if (!raw || raw === '0') return { host };
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`CONVEYOR_METRICS_PORT=${raw}: must be a port number (0 or unset: off)`);
  return { port, host };
}
