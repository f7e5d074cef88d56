import { AgentMetrics } from './agent-metrics';

describe('AgentStoreMetrics', () => {
  it('counts artifact bytes up and down, cache restores by outcome, and cache bytes', async () => {
    const m = new AgentMetrics({ agent: 'a-1', machine: 'm-1', name: 'builder' });
    m.stores.artifacts('up', 1000);
    m.stores.artifacts('down', 10);
    m.stores.cacheRestore('miss');
    m.stores.cacheRestore('exact', 500);
    m.stores.cacheSaved(700);
    const text = await m.registry.metrics();
    expect(text).toContain('conveyor_agent_artifact_bytes_total{direction="up",agent="a-1",machine="m-1"} 1000');
    expect(text).toContain('conveyor_agent_artifact_bytes_total{direction="down",agent="a-1",machine="m-1"} 10');
    expect(text).toContain('conveyor_agent_cache_restores_total{outcome="miss",agent="a-1",machine="m-1"} 1');
    expect(text).toContain('conveyor_agent_cache_restores_total{outcome="exact",agent="a-1",machine="m-1"} 1');
    expect(text).toContain('conveyor_agent_cache_bytes_total{direction="restored",agent="a-1",machine="m-1"} 500');
    expect(text).toContain('conveyor_agent_cache_bytes_total{direction="saved",agent="a-1",machine="m-1"} 700');
  });
});
