export * from './log-writer';
export * from './log-reader';
