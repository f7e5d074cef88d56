export * from './log-writer';
export * from './log-reader';
export * from './log-fanout';
export * from './log-publisher';
