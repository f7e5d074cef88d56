export * from './validation';
export * from './clone';
