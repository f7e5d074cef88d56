import { BadRequestException, Injectable } from '@nestjs/common';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { JsonObject } from '@conveyor/contracts';

const CACHE_SIZE = 200;

/**
 * JSON Schema checks with ajv: a definition's schema must compile (strict mode reports
 * unknown keywords and contradictions), and a resource's spec must satisfy it.
 */
@Injectable()
export class JsonSchemaService {
  /** Compiled validators by schema text; most recently used last. */
  private readonly cache = new Map<string, ValidateFunction>();

  /** Throws 400 with ajv's message when `schema` is not a valid JSON Schema. */
  assertValidSchema(schema: JsonObject, field = 'schema'): void {
    try {
      this.compile(schema);
    } catch (err) {
      throw new BadRequestException(`${field} is not a valid JSON Schema: ${(err as Error).message}`);
    }
  }

  /** Every way `value` fails `schema`, as `spec/<path> <message>`; empty when it passes. */
  check(schema: JsonObject, value: unknown, field = 'spec'): string[] {
    const validate = this.compile(schema);
    if (validate(value)) return [];
    return (validate.errors ?? []).map((e) => describe(field, e));
  }

  private compile(schema: JsonObject): ValidateFunction {
    const key = JSON.stringify(schema);
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    // One ajv instance per schema: schemas with the same `$id` but different content must not collide.
    const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
    addFormats(ajv);
    const validate = ajv.compile(schema);
    this.cache.set(key, validate);
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
    return validate;
  }
}

function describe(field: string, e: ErrorObject): string {
  const params = e.params as Record<string, unknown>;
  let message = e.message ?? 'is invalid';
  if (e.keyword === 'additionalProperties') message += ` (${JSON.stringify(params.additionalProperty)})`;
  if (e.keyword === 'enum') message += ` (${JSON.stringify(params.allowedValues)})`;
  return `${field}${e.instancePath} ${message}`;
}
