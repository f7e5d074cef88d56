export * from './artifact-files';
export * from './artifact-store';
