export * from './run-record';
export * from './hand-off';
