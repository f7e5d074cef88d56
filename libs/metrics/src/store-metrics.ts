import { Counter, type Registry } from 'prom-client';

/** What an agent moved to and from the Object Store: artifacts' bytes, caches' hits and bytes. */
export class AgentStoreMetrics {
  private readonly artifactBytes: Counter<'direction'>;
  private readonly cacheRequests: Counter<'outcome'>;
  private readonly cacheBytes: Counter<'direction'>;

  constructor(registry: Registry) {
    this.artifactBytes = new Counter({ name: 'conveyor_agent_artifact_bytes_total', help: 'Artifact bytes this agent uploaded (up) and fetched (down)', labelNames: ['direction'], registers: [registry] });
    this.cacheRequests = new Counter({ name: 'conveyor_agent_cache_restores_total', help: 'Cache restores by outcome: exact (the key), partial (a restoreKeys match), miss', labelNames: ['outcome'], registers: [registry] });
    this.cacheBytes = new Counter({ name: 'conveyor_agent_cache_bytes_total', help: 'Cache bytes this agent restored and saved', labelNames: ['direction'], registers: [registry] });
  }

  artifacts(direction: 'up' | 'down', bytes: number): void {
    this.artifactBytes.inc({ direction }, bytes);
  }

  cacheRestore(outcome: 'exact' | 'partial' | 'miss', bytes = 0): void {
    this.cacheRequests.inc({ outcome });
    if (bytes) this.cacheBytes.inc({ direction: 'restored' }, bytes);
  }

  cacheSaved(bytes: number): void {
    this.cacheBytes.inc({ direction: 'saved' }, bytes);
  }
}
