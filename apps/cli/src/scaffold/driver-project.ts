/**
 * The files of a new driver project (`conveyor new driver NAME`): a driver made with the SDK's
 * runDriver, its test (one step run on a local nats-server with the SDK's runStep), and a
 * README that shows the Nest way too. Paths are relative to the project's directory.
 */
/**
 * The SDK's package name. Spliced into the templates' imports, never written in them: the
 * build's alias rewriting (tsc-alias) would take an import line in a template for one of its own.
 */
export const SDK = '@conveyor/driver-sdk';

export interface DriverProject {
  /** The driver's name (a Conveyor name): what pipelines' steps put in `driver:`. */
  name: string;
  /** The dependency on the SDK as package.json says it: a version range or `file:<tarball>`. */
  sdk: string;
  /** Version ranges of the dev tools (the repository's own, so an install finds them cached). */
  typescript: string;
  typesNode: string;
}

export function driverProjectFiles(p: DriverProject): Record<string, string> {
  return {
    'package.json': json({
      name: `${p.name}-driver`,
      version: '0.1.0',
      private: true,
      description: `The "${p.name}" driver of Conveyor`,
      main: 'dist/main.js',
      scripts: {
        build: 'tsc -p tsconfig.json',
        start: 'node dist/main.js',
        test: 'tsc -p tsconfig.json && node --test dist/driver.test.js',
      },
      engines: { node: '>=20' },
      dependencies: { [SDK]: p.sdk },
      devDependencies: { '@types/node': p.typesNode, typescript: p.typescript },
    }),
    'tsconfig.json': json({
      compilerOptions: {
        target: 'ES2022',
        module: 'node16',
        moduleResolution: 'node16',
        strict: true,
        rootDir: 'src',
        outDir: 'dist',
        sourceMap: true,
        types: ['node'],
        skipLibCheck: true,
        // For the Nest way (see the README): @Controller, @HandleStep.
        experimentalDecorators: true,
        emitDecoratorMetadata: true,
      },
      include: ['src'],
    }),
    '.gitignore': 'node_modules/\ndist/\n',
    'src/driver.ts': driverTs(p.name),
    'src/main.ts': mainTs(),
    'src/driver.test.ts': testTs(),
    'README.md': readme(p.name),
  };
}

function json(v: unknown): string {
  return JSON.stringify(v, null, 2) + '\n';
}

const driverTs = (name: string) => `import type { StepContext, StepResult } from '${SDK}';

/** What pipelines' steps put in \`driver:\` to have this driver run them. */
export const DRIVER = '${name}';

/**
 * One attempt of one step. \`ctx.config\` is the step's config from the pipeline; \`ctx.log\`
 * lines show in the run's logs; \`ctx.signal\` fires on timeout or cancel. Return
 * \`{ success: false, message }\` (or throw) to fail the attempt; \`data\` goes to later steps.
 */
export async function handle(ctx: StepContext): Promise<StepResult> {
  const who = typeof ctx.config.greet === 'string' ? ctx.config.greet : 'world';
  ctx.log.info(\`hello, \${who}\`);
  return {
    success: true,
    message: \`greeted \${who}\`,
    data: { greeting: \`hello, \${who}\`, after: Object.keys(ctx.outputs) },
  };
}
`;

const mainTs = () => `import { runDriver } from '${SDK}';
import { DRIVER, handle } from './driver';

// Settings come from the environment: CONVEYOR_NATS_URL, CONVEYOR_CONCURRENCY, ... (see the README).
// SIGTERM/SIGINT let the running steps finish, hand back the rest, and exit 0.
runDriver({ name: DRIVER, handle }).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
`;

const testTs = () => `import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { runDriver, runStep, startNatsServer, type LocalNats, type RunningDriver } from '${SDK}';
import { DRIVER, handle } from './driver';

// A real nats-server (NATS_SERVER_BIN, or nats-server on PATH), the driver in this process, and
// one step sent to it as a run's first step, the way the gateway sends it.
let nats: LocalNats;
let driver: RunningDriver;
let env: Record<string, string>;

before(async () => {
  nats = await startNatsServer();
  env = { CONVEYOR_NATS_URL: nats.url, CONVEYOR_LOG_LEVEL: 'warn' };
  driver = await runDriver({ name: DRIVER, handle, env, exitOnSignals: false });
});

after(async () => {
  await driver?.stop();
  await nats?.stop();
});

test('greets who the step config names', async () => {
  const run = await runStep({ driver: DRIVER, config: { greet: 'test' }, env, waitMs: 20_000 });
  assert.equal(run.status, 'succeeded', run.step?.message);
  assert.deepEqual(run.step?.data, { greeting: 'hello, test', after: [] });
  assert.ok(run.lines.includes('hello, test'), run.lines.join('\\n'));
});
`;

const readme = (name: string) => `# ${name} driver

A Conveyor driver: it runs the pipeline steps that say \`driver: ${name}\`.
Made by \`conveyor new driver ${name}\`.

\`\`\`sh
npm install
npm test          # builds, starts a local nats-server (NATS_SERVER_BIN or nats-server on PATH), runs one step
npm run build
CONVEYOR_NATS_URL=nats://127.0.0.1:4222 npm start
\`\`\`

Its work is \`handle\` in \`src/driver.ts\`; \`src/main.ts\` serves it with \`runDriver\`. A step of a pipeline:

\`\`\`yaml
steps:
  - { id: hello, name: Hello, driver: ${name}, config: { greet: team } }
\`\`\`

## Settings (environment)

\`CONVEYOR_NATS_URL\` (default \`nats://127.0.0.1:4222\`), \`CONVEYOR_NATS_USER\`/\`_PASS\`/\`_TOKEN\`/\`_CREDS\`,
\`CONVEYOR_PREFIX\`, \`CONVEYOR_CONCURRENCY\` (steps at once), \`CONVEYOR_AGENT_ID\`, \`CONVEYOR_MACHINE_ID\`,
\`CONVEYOR_DRAIN_TIMEOUT\`, \`CONVEYOR_METRICS_PORT\`, \`CONVEYOR_LOG_LEVEL\`: the same as Conveyor's own drivers.

## The Nest way

The same driver as a NestJS app (dependency injection, modules), with \`@HandleStep\` and \`startDriver\`:

\`\`\`ts
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { HandleStep, startDriver, type StepContext, type StepResult } from '${SDK}';
import { handle } from './driver';

@Controller()
class Driver {
  @HandleStep('${name}')
  run(ctx: StepContext): Promise<StepResult> {
    return handle(ctx);
  }
}

@Module({ controllers: [Driver] })
class DriverModule {}

void startDriver(DriverModule, { name: '${name}' });
\`\`\`
`;
