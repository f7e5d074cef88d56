export * from './wire-schemas';
