export * from './schedule-times';
