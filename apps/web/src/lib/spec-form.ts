/**
 * The trigger form's view of a definition's JSON Schema: one field per top-level property of
 * the spec (strings, numbers, booleans, enums; anything else as JSON), and errors — the
 * browser's own check and the server's 400 details — sorted to the field they are about.
 */

export type FieldKind = 'string' | 'number' | 'integer' | 'boolean' | 'enum' | 'json';

export interface SpecField {
  name: string;
  kind: FieldKind;
  required: boolean;
  description?: string;
  options?: string[];
}

type Schema = { type?: unknown; properties?: Record<string, Schema>; required?: unknown; enum?: unknown[]; description?: unknown };

export function specFields(schema: unknown): SpecField[] {
  const s = (schema ?? {}) as Schema;
  const required = new Set(Array.isArray(s.required) ? s.required.map(String) : []);
  return Object.entries(s.properties ?? {}).map(([name, p]) => {
    const kind: FieldKind = Array.isArray(p.enum) && p.enum.every((v) => typeof v === 'string') ? 'enum' : p.type === 'string' || p.type === 'number' || p.type === 'integer' || p.type === 'boolean' ? p.type : 'json';
    return {
      name,
      kind,
      required: required.has(name),
      description: typeof p.description === 'string' ? p.description : undefined,
      options: kind === 'enum' ? (p.enum as string[]) : undefined,
    };
  });
}

/** Errors by field name; `''` holds those about the spec as a whole (or a field the form has not). */
export type FieldErrors = Record<string, string[]>;

function add(out: FieldErrors, field: string, message: string): void {
  (out[field] ??= []).push(message);
}

/**
 * The server's 400 details for a spec, e.g. `spec/repository must be string`,
 * `spec must have required property 'ref'`, to fields.
 */
export function serverFieldErrors(details: string[], fields: string[]): FieldErrors {
  const out: FieldErrors = {};
  for (const d of details) {
    const at = /^spec\/([^/\s]+)\S*\s+(.*)$/.exec(d);
    const required = /required property '([^']+)'/.exec(d);
    const field = at ? unescapePointer(at[1]) : required?.[1];
    if (field !== undefined && fields.includes(field)) add(out, field, at ? at[2] : 'is required');
    else add(out, '', d);
  }
  return out;
}

/** The browser's check (@cfworker/json-schema's output units) to fields. */
export function validatorFieldErrors(errors: Array<{ instanceLocation: string; keyword: string; error: string }>, fields: string[]): FieldErrors {
  const out: FieldErrors = {};
  for (const e of errors) {
    // Units for "properties"/"allOf" wrap the real ones; the leaves say what is wrong.
    if (['properties', 'allOf', 'anyOf', 'oneOf', '$ref', 'additionalProperties', 'items'].includes(e.keyword) && /^Property|^Items|did not match/.test(e.error) && e.instanceLocation === '#') continue;
    const at = /^#\/([^/]+)/.exec(e.instanceLocation);
    const required = e.keyword === 'required' ? /"([^"]+)"/.exec(e.error) : null;
    const field = at ? unescapePointer(at[1]) : required?.[1];
    if (field !== undefined && fields.includes(field)) {
      if (!out[field]?.includes(e.error)) add(out, field, e.keyword === 'required' ? 'is required' : e.error);
    } else if (!out['']?.includes(e.error)) add(out, '', e.error);
  }
  return out;
}

function unescapePointer(s: string): string {
  return decodeURIComponent(s).replace(/~1/g, '/').replace(/~0/g, '~');
}

/** The value a field's text stands for, or an error saying why it is none. */
export function parseField(kind: FieldKind, text: string): { value?: unknown; error?: string } {
  if (text === '') return {};
  switch (kind) {
    case 'number':
    case 'integer': {
      const n = Number(text);
      return Number.isFinite(n) ? { value: n } : { error: 'is not a number' };
    }
    case 'boolean':
      return { value: text === 'true' };
    case 'json':
      try {
        return { value: JSON.parse(text) };
      } catch (e) {
        return { error: `is not valid JSON (${(e as Error).message})` };
      }
    default:
      return { value: text };
  }
}

/** A spec value as the field's text. */
export function fieldText(kind: FieldKind, value: unknown): string {
  if (value === undefined) return '';
  if (kind === 'json') return JSON.stringify(value, null, 2);
  return String(value);
}
