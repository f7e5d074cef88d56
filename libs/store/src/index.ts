export * from './errors';
export * from './json-kv';
export * from './stores';
export * from './run-index';
export * from './kv-mirror';
