import { applyDecorators } from '@nestjs/common';
import { EventPattern } from '@nestjs/microservices';
import { isName } from '@conveyor/contracts';

/**
 * Marks the method that does a driver's work. It is Nest's own `@EventPattern`: the
 * JetStream transport serves the pattern from the driver's durable consumer, and the
 * method receives a StepContext and returns a StepResult.
 */
export function HandleStep(driver: string): MethodDecorator {
  if (!isName(driver)) throw new Error(`invalid driver name ${JSON.stringify(driver)}`);
  return applyDecorators(EventPattern(driver));
}
