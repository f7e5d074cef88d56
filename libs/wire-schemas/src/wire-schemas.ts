import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { decodeRunRecord, Headers, protocolProblem, strictUtf8, type Subjects } from '@conveyor/contracts';

/** The schemas of schemas/ (generated from libs/contracts by `npm run schemas`), by name. */
export type WireSchemaName =
  | 'step-message'
  | 'step-record'
  | 'step-done'
  | 'run-end'
  | 'log-line'
  | 'logs-end'
  | 'cancel-signal'
  | 'cancels-entry'
  | 'agent-info'
  | 'dead-letter'
  | 'schedule-tick'
  | 'report-job';

/**
 * The schema a message on `subject` must satisfy (docs/protocol.md), or undefined for a subject
 * that carries no Conveyor message (JetStream's API, inboxes, the gateway's own buckets).
 */
export function wireSchemaOf(subjects: Subjects, subject: string): WireSchemaName | undefined {
  const record = subjects.parseRunRecord(subject);
  if (record) {
    switch (record.kind) {
      case 'work':
        return 'step-message';
      case 'done':
        return 'step-done';
      case 'end':
        return 'run-end';
      default:
        return 'step-record';
    }
  }
  const p = subjects.prefix;
  if (!subject.startsWith(`${p}.`)) {
    const bucket = subject.startsWith('$KV.') ? subject.split('.')[1] : undefined;
    if (bucket === subjects.bucket('agents')) return 'agent-info';
    if (bucket === subjects.bucket('cancels')) return 'cancels-entry';
    return undefined;
  }
  const [kind, ...rest] = subject.slice(p.length + 1).split('.');
  if (kind === 'logs') return rest.length === 2 && rest[1] === 'end' ? 'logs-end' : rest.length === 3 ? 'log-line' : undefined;
  if (kind === 'control') return rest.length === 2 && rest[1] === 'cancel' ? 'cancel-signal' : undefined;
  if (kind === 'dlq') return rest.length === 1 ? 'dead-letter' : undefined;
  if (kind === 'ticks') return rest.length === 1 ? 'schedule-tick' : undefined;
  if (kind === 'reports') return rest.length === 3 ? 'report-job' : undefined;
  return undefined;
}

/** Where the schemas are: schemas/ at the repository's root, from libs/… under ts-jest or dist/libs/… when compiled. */
export function findSchemasDir(from: string = __dirname): string {
  for (let dir = from, i = 0; i < 8; i++, dir = dirname(dir)) {
    if (existsSync(join(dir, 'schemas', 'step-message.schema.json'))) return join(dir, 'schemas');
  }
  throw new Error(`no schemas/ directory above ${from} (npm run schemas makes it)`);
}

/** One message that broke the protocol: where it was sent, and what is wrong with it. */
export interface WireViolation {
  subject: string;
  schema: WireSchemaName;
  problem: string;
}

/**
 * Checks messages against the schema of their subject, and what a schema cannot say: that a
 * record of a run's log is about the run and step its subject names (decodeRunRecord), and
 * carries a protocol version header whose major this version speaks.
 */
export class WireValidator {
  private readonly validators = new Map<WireSchemaName, ValidateFunction>();

  constructor(
    readonly subjects: Subjects,
    dir: string = findSchemasDir(),
  ) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    for (const file of readdirSync(dir)) {
      if (!file.endsWith('.schema.json')) continue;
      this.validators.set(file.slice(0, -'.schema.json'.length) as WireSchemaName, ajv.compile(JSON.parse(readFileSync(join(dir, file), 'utf8'))));
    }
  }

  /** The schemas it knows. */
  get names(): WireSchemaName[] {
    return [...this.validators.keys()];
  }

  /**
   * What is wrong with a message on `subject`: undefined when nothing is, or when the subject
   * carries no Conveyor message. `header` reads one of its NATS headers. A KV delete or purge
   * (no value) is not a message.
   */
  check(subject: string, data: Uint8Array, header: (name: string) => string | undefined = () => undefined): WireViolation | undefined {
    const schema = wireSchemaOf(this.subjects, subject);
    if (!schema) return undefined;
    if (schema === 'agent-info' || schema === 'cancels-entry') {
      const op = header('KV-Operation');
      if (op === 'DEL' || op === 'PURGE') return undefined;
    }
    const problem = this.problemOf(schema, subject, data, header);
    return problem ? { subject, schema, problem } : undefined;
  }

  private problemOf(schema: WireSchemaName, subject: string, data: Uint8Array, header: (name: string) => string | undefined): string | undefined {
    const validate = this.validators.get(schema);
    if (!validate) return `no schema ${schema}.schema.json`;
    let value: unknown;
    try {
      value = JSON.parse(strictUtf8.decode(data));
    } catch (err) {
      return `not UTF-8 JSON: ${(err as Error).message}`;
    }
    if (!validate(value)) return (validate.errors ?? []).map(describe).join('; ');
    const where = this.subjects.parseRunRecord(subject);
    if (!where) return undefined;
    const decoded = decodeRunRecord(where, data);
    if (!decoded.ok) return decoded.reason;
    const version = header(Headers.Protocol);
    if (version === undefined) return `no ${Headers.Protocol} header`;
    return protocolProblem(version);
  }
}

function describe(e: ErrorObject): string {
  const extra = e.keyword === 'additionalProperties' ? ` (${(e.params as { additionalProperty: string }).additionalProperty})` : '';
  return `${e.instancePath || '/'} ${e.message ?? e.keyword}${extra}`;
}
