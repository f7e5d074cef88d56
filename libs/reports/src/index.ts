export * from './report-plan';
export * from './report-requests';
export * from './retry-policy';
