export * from './connection';
export * from './provision';
export * from './jetstream.module';
