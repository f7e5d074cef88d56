export * from './masker';
export * from './refs';
export * from './secret-key';
export * from './secrets-store';
