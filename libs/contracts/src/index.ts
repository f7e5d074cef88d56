export * from './names';
export * from './subjects';
export * from './headers';
export * from './models';
export * from './messages';
export * from './step-message';
export * from './ids';
export * from './run-event';
