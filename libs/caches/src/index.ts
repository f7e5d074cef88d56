export * from './cache-rules';
export * from './cache-store';
