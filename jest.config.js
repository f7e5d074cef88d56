// Two projects: fast unit tests beside the code, and end-to-end suites under test/
// that start real nats-server / Docker / git (see test/run.sh).
const moduleNameMapper = {
  '^@conveyor/([a-z-]+)$': '<rootDir>/libs/$1/src',
};
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }] };
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      rootDir: __dirname,
      roots: ['<rootDir>/apps', '<rootDir>/libs'],
      testMatch: ['**/*.spec.ts'],
      moduleNameMapper,
      transform,
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      rootDir: __dirname,
      roots: ['<rootDir>/test'],
      testMatch: ['**/*.e2e-spec.ts'],
      // Checks every message the suites' systems send against schemas/ (see test/support/wire-check.ts).
      setupFilesAfterEnv: ['<rootDir>/test/support/wire-check.setup.ts'],
      moduleNameMapper,
      transform,
    },
  ],
};
