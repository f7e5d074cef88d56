import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { isMap, LineCounter, parseAllDocuments, type Document } from 'yaml';
import { CliError } from './errors';

export type Kind = 'ResourceDefinition' | 'Pipeline' | 'Resource' | 'Schedule' | 'Trigger';

/** Accepted spellings of `kind:` (case-insensitive). */
const KINDS: Record<string, Kind> = {
  resourcedefinition: 'ResourceDefinition',
  definition: 'ResourceDefinition',
  'resource-definition': 'ResourceDefinition',
  pipeline: 'Pipeline',
  resource: 'Resource',
  schedule: 'Schedule',
  trigger: 'Trigger',
};

/** One document of a manifest file: its kind, the API body (the document without `kind`), and where it came from. */
export interface Manifest {
  kind: Kind;
  name: string;
  body: Record<string, unknown>;
  file: string;
  line: number;
  /** Line of a field, by its dotted path (`steps.1.driver`), for the gateway's validation details. */
  lineOf(path: string): number | undefined;
}

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** The manifest files named by `-f`: a file, or every .yaml/.yml/.json file of a directory (sorted, not recursive). */
export function manifestFiles(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new CliError(`${path}: no such file or directory`);
  }
  if (!st.isDirectory()) return [path];
  const files = readdirSync(path).filter((f) => EXTENSIONS.has(extname(f).toLowerCase())).sort().map((f) => join(path, f));
  if (!files.length) throw new CliError(`${path}: no .yaml, .yml or .json files in it`);
  return files;
}

/**
 * Reads every document of a file (YAML, multi-document with `---`; JSON is YAML too), with line
 * numbers for errors. Throws a CliError naming `file:line` for bad YAML or a bad document.
 */
export function readManifests(file: string, text = readFileSync(file, 'utf8')): Manifest[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
  const lineAt = (offset: number) => lines.linePos(offset).line;
  if (!Array.isArray(docs)) throw new CliError(`${file}: not a YAML stream`);
  const out: Manifest[] = [];
  for (const doc of docs) {
    const err = doc.errors[0];
    if (err) throw new CliError(`${file}:${lineAt(err.pos[0])}: invalid YAML: ${err.message.split('\n')[0]}`);
    if (doc.contents === null) continue; // an empty document, e.g. after a trailing ---
    const line = lineAt(doc.contents.range?.[0] ?? 0);
    if (!isMap(doc.contents)) throw new CliError(`${file}:${line}: a manifest must be a mapping with a "kind" field`);
    const raw = doc.toJS() as Record<string, unknown>;
    const kindNode = doc.get('kind', true) as { range?: [number, number] } | undefined;
    const kindLine = kindNode?.range ? lineAt(kindNode.range[0]) : line;
    if (typeof raw.kind !== 'string') throw new CliError(`${file}:${line}: "kind" is missing (ResourceDefinition, Pipeline, Resource, Schedule or Trigger)`);
    const kind = KINDS[raw.kind.toLowerCase()];
    if (!kind) throw new CliError(`${file}:${kindLine}: unknown kind "${raw.kind}" (use ResourceDefinition, Pipeline, Resource, Schedule or Trigger)`);
    const { kind: _k, apiVersion: _v, ...body } = raw;
    if (typeof body.name !== 'string' || !body.name) throw new CliError(`${file}:${line}: ${kind} without a "name"`);
    if (kind === 'Resource' && typeof body.resource !== 'string') throw new CliError(`${file}:${line}: Resource "${body.name}" needs "resource" (its definition's name)`);
    out.push({ kind, name: body.name, body, file, line, lineOf: (path) => fieldLine(doc, path, lineAt) });
  }
  return out;
}

function fieldLine(doc: Document, path: string, lineAt: (offset: number) => number): number | undefined {
  const keys = path.split('.').map((k) => (/^\d+$/.test(k) ? Number(k) : k));
  // The deepest node of the path that exists: for `steps.3.driver` with two steps, `steps`.
  for (let n = keys.length; n > 0; n--) {
    const node = doc.getIn(keys.slice(0, n), true) as { range?: [number, number] } | undefined;
    if (node && typeof node === 'object' && node.range) return lineAt(node.range[0]);
  }
  return undefined;
}
