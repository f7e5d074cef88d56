export * from './options';
export * from './build-containers';
export * from './docker.module';
export * from './labels';
