export * from './connection';
export * from './server-version';
export * from './provision';
export * from './runs-retention';
export * from './jetstream.module';
export * from './kv-keys';
export * from './agents';
export * from './step-queues';
