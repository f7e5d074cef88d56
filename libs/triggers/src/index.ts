export * from './forge-events';
export * from './signatures';
export * from './trigger-match';
