export * from './step-context';
export * from './handle-step.decorator';
export * from './start-driver';
export * from './step-runner';
export * from './backoff';
export * from './run-driver';
export * from './local-run';
