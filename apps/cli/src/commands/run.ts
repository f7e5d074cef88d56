import type { Pipeline, Resource } from '@conveyor/contracts';
import type { GatewayClient } from '../client';
import { CliError } from '../errors';
import { logs } from './logs';

/**
 * `conveyor run PIPELINE --resource NAME [--set spec.key=value]... [--follow]`: a new version of
 * the resource (its latest spec with the --set changes) naming the pipeline, which starts a run;
 * POSTs the resource when it does not exist yet. Prints the run id; with --follow, its logs.
 */
export async function runPipeline(
  client: GatewayClient,
  pipelineName: string,
  opts: { resource: string; set: string[]; follow: boolean; timestamps: boolean },
  print: (line: string) => void,
): Promise<number> {
  const pipeline = await client.find<Pipeline>(`/pipelines/${encodeURIComponent(pipelineName)}`);
  if (!pipeline) throw new CliError(`pipeline "${pipelineName}" not found`);
  const type = pipeline.resource;
  const current = await client.find<Resource>(`/resources/${encodeURIComponent(type)}/${encodeURIComponent(opts.resource)}`);
  const sets = opts.set.map(parseSet);
  const spec = structuredClone(current?.spec ?? {});
  const metadata = structuredClone(current?.metadata ?? {});
  for (const s of sets) assign(s.root === 'spec' ? spec : metadata, s.path, s.value);
  const res = current
    ? await client.request<{ runid?: string; version: number }>('PUT', `/resources/${encodeURIComponent(type)}/${encodeURIComponent(opts.resource)}`, { spec, metadata, pipeline: pipelineName })
    : await client.request<{ runid?: string; version: number }>('POST', '/resources', { name: opts.resource, resource: type, pipeline: pipelineName, spec, metadata });
  if (!res?.runid) throw new CliError('the gateway stored the resource but started no run');
  print(`run ${res.runid} started: pipeline ${pipelineName}, resource ${type}/${opts.resource} version ${res.version}`);
  if (!opts.follow) return 0;
  return logs(client, res.runid, { follow: true, timestamps: opts.timestamps });
}

/** `spec.a.b=value`: the value is JSON when it parses (numbers, booleans, arrays), else a string. */
export function parseSet(expr: string): { root: 'spec' | 'metadata'; path: string[]; value: unknown } {
  const eq = expr.indexOf('=');
  const key = eq < 0 ? '' : expr.slice(0, eq);
  const parts = key.split('.');
  if (eq < 0 || parts.length < 2 || (parts[0] !== 'spec' && parts[0] !== 'metadata') || parts.some((p) => !p)) {
    throw new CliError(`--set ${expr}: use spec.key=value (or metadata.key=value); nested keys with dots`);
  }
  if (parts.some((p) => p === '__proto__' || p === 'constructor' || p === 'prototype')) throw new CliError(`--set ${expr}: invalid key`);
  const raw = expr.slice(eq + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // a plain string
  }
  return { root: parts[0] as 'spec' | 'metadata', path: parts.slice(1), value };
}

function assign(target: Record<string, unknown>, path: string[], value: unknown): void {
  let o = target;
  for (const k of path.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null || Array.isArray(o[k])) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[path[path.length - 1]] = value;
}

