export * from './kit';
export { SCENARIOS, type Scenario } from './scenarios';
