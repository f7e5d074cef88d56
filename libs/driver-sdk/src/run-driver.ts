import { Controller, Module } from '@nestjs/common';
import { isName, NAME_RULE } from '@conveyor/contracts';
import { HandleStep, type HandleStepOptions } from './handle-step.decorator';
import { exitOnSignals, launchDriver, type LaunchedDriver } from './start-driver';
import type { StepContext, StepResult } from './step-context';

export interface RunDriverOptions extends HandleStepOptions {
  /** The driver's name: pipelines' steps say `driver: <name>` to have it run them. */
  name: string;
  /** Does one attempt of one step; throwing fails the attempt with the error's message. */
  handle: (ctx: StepContext) => Promise<StepResult> | StepResult;
  /** Default steps at once when CONVEYOR_CONCURRENCY is not set (1). */
  concurrency?: number;
  /** Where the CONVEYOR_* settings are read (default process.env). */
  env?: Record<string, string | undefined>;
  /**
   * SIGTERM/SIGINT drain the driver and exit the process (default true, as startDriver). Off
   * for a process that stops the driver itself, through the returned handle (e.g. a test).
   */
  exitOnSignals?: boolean;
}

/** A running driver started by runDriver. */
export interface RunningDriver {
  readonly name: string;
  readonly agentId: string;
  /** Stops taking steps, lets running ones finish (CONVEYOR_DRAIN_TIMEOUT), hands back the rest, disconnects. */
  stop(): Promise<void>;
}

/**
 * A driver from one plain function, for code that does not use Nest: the same agent as
 * startDriver with an `@HandleStep` controller (the module is made here), so the protocol
 * is the step runner's, not a second one.
 */
export async function runDriver(options: RunDriverOptions): Promise<RunningDriver> {
  const { name, handle } = options;
  if (!isName(name)) throw new Error(`runDriver: invalid driver name ${JSON.stringify(name)}: ${NAME_RULE}`);
  if (typeof handle !== 'function') throw new Error(`runDriver: "handle" must be a function (ctx) => StepResult, not ${handle === null ? 'null' : typeof handle}`);
  if (options.concurrency !== undefined && !(Number.isInteger(options.concurrency) && options.concurrency >= 1)) {
    throw new Error(`runDriver: "concurrency" must be a whole number of at least 1, not ${options.concurrency}`);
  }

  class FunctionDriver {
    run(ctx: StepContext): Promise<StepResult> | StepResult {
      return handle(ctx);
    }
  }
  const run = Object.getOwnPropertyDescriptor(FunctionDriver.prototype, 'run')!;
  HandleStep(name, { pinsMachine: options.pinsMachine, releasesMachine: options.releasesMachine })(FunctionDriver.prototype, 'run', run);
  Controller()(FunctionDriver);
  class FunctionDriverModule {}
  Module({ controllers: [FunctionDriver] })(FunctionDriverModule);

  const launched: LaunchedDriver = await launchDriver(FunctionDriverModule, { name, concurrency: options.concurrency, env: options.env });
  if (options.exitOnSignals !== false) exitOnSignals(launched, name);
  return { name, agentId: launched.agentId, stop: () => launched.stop() };
}
