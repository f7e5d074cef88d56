export * from './build-spec';
