import { applyDecorators } from '@nestjs/common';
import { EventPattern } from '@nestjs/microservices';
import { isName } from '@conveyor/contracts';

export interface HandleStepOptions {
  /**
   * This step makes something on its build machine that later steps need (e.g. a
   * container): once it ran, the run's later steps go only to agents of this machine.
   */
  pinsMachine?: boolean;
  /**
   * This step removes what pinned the run to its machine (e.g. it deletes the container): it
   * still runs where the run is pinned, and the steps after it may run on any machine again
   * (a later container-start pins them anew), which is how one run builds on one machine and
   * deploys, through its artifacts, from another.
   */
  releasesMachine?: boolean;
}

/**
 * Marks the method that does a driver's work. It is Nest's own `@EventPattern`: the
 * JetStream transport serves the pattern from the driver's durable consumers, and the
 * method receives a StepContext and returns a StepResult.
 */
export function HandleStep(driver: string, options: HandleStepOptions = {}): MethodDecorator {
  if (!isName(driver)) throw new Error(`invalid driver name ${JSON.stringify(driver)}`);
  return applyDecorators(EventPattern(driver, { ...options }));
}
