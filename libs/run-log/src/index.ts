export * from './run-log';
