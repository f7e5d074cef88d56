export * from './tracing';
export * from './tracing-shutdown';
