export * from './run-record';
export * from './hand-off';
export * from './step-headers';
export * from './delivery';
export * from './standstill';
export * from './graph';
export * from './matrix';
export * from './conditions';
