import { BadRequestException, ValidationPipe, type ValidationError } from '@nestjs/common';

/** `steps.1.driver must be ...`: every failing field with its full path, children included. */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): string[] {
  const out: string[] = [];
  for (const e of errors) {
    const path = parent ? `${parent}.${e.property}` : e.property;
    for (const text of Object.values(e.constraints ?? {})) {
      // class-validator starts each message with the bare property name; put the full path there instead.
      out.push(text.startsWith(e.property) ? path + text.slice(e.property.length) : `${path}: ${text}`);
    }
    if (e.children?.length) out.push(...flattenValidationErrors(e.children, path));
  }
  return out;
}

export function validationPipe(): ValidationPipe {
  return new ValidationPipe({
    transform: true,
    whitelist: true,
    // Fields of JSON Schemas, specs and step configs are free-form objects; they are not class instances.
    forbidUnknownValues: false,
    exceptionFactory: (errors) => {
      const details = flattenValidationErrors(errors);
      return new BadRequestException({ message: details.join('; '), details });
    },
  });
}
