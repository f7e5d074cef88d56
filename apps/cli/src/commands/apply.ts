import type { Pipeline, Resource, ResourceDefinition, Schedule, Trigger } from '@conveyor/contracts';
import { GatewayError, type GatewayClient } from '../client';
import { CliError } from '../errors';
import { manifestFiles, readManifests, type Kind, type Manifest } from '../manifests';

type Outcome = 'created' | 'changed' | 'unchanged';

/** Definitions first, then pipelines (which name a definition), then resources (which may start runs), then schedules and triggers (which name both). */
const ORDER: Record<Kind, number> = { ResourceDefinition: 0, Pipeline: 1, Resource: 2, Schedule: 3, Trigger: 3 };
const NOUN: Record<Kind, string> = { ResourceDefinition: 'definition', Pipeline: 'pipeline', Resource: 'resource', Schedule: 'schedule', Trigger: 'trigger' };

/**
 * `conveyor apply -f FILE|DIR [--dry-run]`: creates what is missing, updates what differs,
 * leaves the rest alone, and prints one line per manifest. Every file is read and checked
 * before anything is sent, so a YAML error changes nothing.
 */
export async function apply(client: GatewayClient, paths: string[], dryRun: boolean, print: (line: string) => void): Promise<void> {
  const manifests = paths.flatMap(manifestFiles).flatMap((f) => readManifests(f));
  if (!manifests.length) throw new CliError('no manifests found');
  const seen = new Set<string>();
  for (const m of manifests) {
    const key = `${m.kind}/${m.kind === 'Resource' ? `${String(m.body.resource)}/` : ''}${m.name}`;
    if (seen.has(key)) throw new CliError(`${m.file}:${m.line}: ${key} appears twice`);
    seen.add(key);
  }
  const sorted = [...manifests].sort((a, b) => ORDER[a.kind] - ORDER[b.kind]);
  for (const m of sorted) {
    let outcome: Outcome;
    let extra = '';
    try {
      ({ outcome, extra } = await applyOne(client, m, dryRun));
    } catch (err) {
      if (err instanceof GatewayError && err.status >= 400 && err.status < 500) throw refusal(m, err);
      throw err;
    }
    const label = m.kind === 'Resource' ? `${m.body.resource as string}/${m.name}` : m.name;
    print(`${NOUN[m.kind]}/${label} ${outcome}${dryRun && outcome !== 'unchanged' ? ' (dry run)' : ''}${extra}`);
  }
}

async function applyOne(client: GatewayClient, m: Manifest, dryRun: boolean): Promise<{ outcome: Outcome; extra: string }> {
  const name = encodeURIComponent(m.name);
  switch (m.kind) {
    case 'ResourceDefinition': {
      const current = await client.find<ResourceDefinition>(`/resource-definitions/${name}`);
      const outcome = decide(current, m.body);
      if (outcome !== 'unchanged' && !dryRun) await client.request('POST', '/resource-definitions/apply', m.body);
      return { outcome, extra: '' };
    }
    case 'Pipeline': {
      const current = await client.find<Pipeline>(`/pipelines/${name}`);
      const outcome = decide(current, m.body);
      if (!dryRun && outcome === 'created') await client.request('POST', '/pipelines', m.body);
      if (!dryRun && outcome === 'changed') await client.request('PUT', `/pipelines/${name}`, m.body);
      return { outcome, extra: '' };
    }
    case 'Resource': {
      const type = encodeURIComponent(m.body.resource as string);
      const current = await client.find<Resource>(`/resources/${type}/${name}`);
      const outcome = decide(current, m.body);
      if (dryRun || outcome === 'unchanged') return { outcome, extra: '' };
      const { name: _n, resource: _r, ...update } = m.body;
      const res = outcome === 'created'
        ? await client.request<{ version: number; runid?: string }>('POST', '/resources', m.body)
        : await client.request<{ version: number; runid?: string }>('PUT', `/resources/${type}/${name}`, update);
      return { outcome, extra: ` (version ${res?.version}${res?.runid ? `, run ${res.runid}` : ''})` };
    }
    case 'Schedule': {
      const current = await client.find<Schedule>(`/schedules/${name}`);
      // What the gateway fills in when the manifest leaves it out counts as said: no zone is UTC, the resource is named after the schedule.
      const outcome = decide(current, { timezone: undefined, resourceName: m.name, ...m.body });
      if (!dryRun && outcome === 'created') await client.request('POST', '/schedules', m.body);
      if (!dryRun && outcome === 'changed') await client.request('PUT', `/schedules/${name}`, m.body);
      const next = dryRun || outcome === 'unchanged' ? undefined : (await client.find<{ next: string | null }>(`/schedules/${name}`))?.next;
      return { outcome, extra: next ? ` (next ${next})` : '' };
    }
    case 'Trigger': {
      const current = await client.find<Trigger>(`/triggers/${name}`);
      const outcome = decide(current, triggerAsStored(m.body));
      if (dryRun || outcome === 'unchanged') return { outcome, extra: '' };
      const saved = outcome === 'created'
        ? await client.request<{ hook: string }>('POST', '/triggers', m.body)
        : await client.request<{ hook: string }>('PUT', `/triggers/${name}`, m.body);
      return { outcome, extra: outcome === 'created' && saved?.hook ? ` (hook ${saved.hook})` : '' };
    }
  }
}

/**
 * A Trigger manifest as the gateway stores it (fromDto in apps/gateway/src/triggers): push events
 * by default, the trigger's name as the resource's, no empty branch list. A PUT replaces the whole
 * trigger, so an optional field the manifest leaves out (or a status field) is compared as absent:
 * dropping `branches:` from the file is a change, not "unchanged".
 */
export function triggerAsStored(body: Record<string, unknown>): Record<string, unknown> {
  const { repository, events, branches, status } = body;
  return {
    ...body,
    // Values of the wrong type stay as written: they differ from what is stored, so the gateway gets to refuse them.
    repository: typeof repository === 'string' ? repository.trim() || undefined : repository,
    events: events === undefined ? ['push'] : Array.isArray(events) ? [...new Set(events)] : events,
    branches: Array.isArray(branches) && !branches.length ? undefined : branches,
    resourceName: body.resourceName ?? body.name,
    spec: body.spec ?? {},
    status: status && typeof status === 'object' && !Array.isArray(status) ? { forge: undefined, project: undefined, context: undefined, ...status } : status,
  };
}

/** Free-form JSON whose every key matters: compared exactly, not as a subset. */
const EXACT = new Set(['schema', 'spec', 'config', 'metadata']);

function decide(current: object | undefined, wanted: Record<string, unknown>): Outcome {
  if (!current) return 'created';
  return contains(current, wanted) ? 'unchanged' : 'changed';
}

/**
 * True when the stored object already says everything the manifest says. Fields the gateway
 * fills in (timestamps, defaults) are ignored; free-form JSON (schema, spec, config) must match exactly.
 */
export function contains(stored: unknown, wanted: unknown, key = ''): boolean {
  if (EXACT.has(key)) return deepEqual(stored ?? {}, wanted ?? {});
  if (Array.isArray(wanted)) {
    return Array.isArray(stored) && stored.length === wanted.length && wanted.every((w, i) => contains(stored[i], w));
  }
  if (wanted !== null && typeof wanted === 'object') {
    if (stored === null || typeof stored !== 'object' || Array.isArray(stored)) return false;
    return Object.entries(wanted).every(([k, v]) => contains((stored as Record<string, unknown>)[k], v, k));
  }
  return stored === wanted || (wanted === '' && stored === undefined);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return false;
}

/** The gateway's 4xx text, at the manifest's line (or the failing field's line, when the gateway named it). */
function refusal(m: Manifest, err: GatewayError): CliError {
  const where = (detail: string) => {
    const path = /^([A-Za-z0-9_.]+)[\s:]/.exec(detail)?.[1];
    return (path && m.lineOf(path)) ?? m.line;
  };
  const head = `${m.file}:${m.line}: ${NOUN[m.kind]} "${m.name}" refused by the gateway (${err.status}): ${err.gatewayMessage}`;
  const lines = err.details.map((d) => `  ${m.file}:${where(d)}: ${d}`);
  return new CliError([head, ...lines].join('\n'));
}
