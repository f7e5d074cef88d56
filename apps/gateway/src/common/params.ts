import { BadRequestException, type PipeTransform } from '@nestjs/common';
import { NAME_PATTERN, NAME_RULE, RUN_ID_PATTERN, STEP_ID_PATTERN } from '@conveyor/contracts';

/**
 * Names in paths become KV keys and NATS subject tokens; anything outside NAME_PATTERN
 * (dots, slashes, `..`, wildcards) is refused here, before it reaches the store.
 */
export class NamePipe implements PipeTransform<string, string> {
  constructor(private readonly what: string) {}

  transform(value: string): string {
    if (typeof value !== 'string' || !NAME_PATTERN.test(value)) {
      throw new BadRequestException(`${this.what} ${JSON.stringify(String(value))} is not valid: use ${NAME_RULE}`);
    }
    return value;
  }
}

export class RunIdPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (typeof value !== 'string' || !RUN_ID_PATTERN.test(value)) {
      throw new BadRequestException(`run id ${JSON.stringify(String(value))} is not valid: a run id is 26 lowercase letters and digits`);
    }
    return value;
  }
}

export class StepIdPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (typeof value !== 'string' || !STEP_ID_PATTERN.test(value)) throw new BadRequestException(`step id ${JSON.stringify(String(value))} is not valid`);
    return value;
  }
}

export class VersionPipe implements PipeTransform<unknown, number> {
  /** The global ValidationPipe may already have turned the text into a number (or NaN). */
  transform(value: unknown): number {
    const text = String(value);
    if (!/^[1-9][0-9]{0,8}$/.test(text)) throw new BadRequestException(`version ${JSON.stringify(text)} is not valid: use a positive integer`);
    return Number(text);
  }
}
