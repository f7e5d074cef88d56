export * from './metrics-server';
export * from './step-metrics';
export * from './agent-metrics';
export * from './store-metrics';
