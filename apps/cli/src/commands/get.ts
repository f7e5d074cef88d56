import type { AgentInfo, Pipeline, Resource, ResourceDefinition, Run, Schedule, Trigger } from '@conveyor/contracts';
import type { GatewayClient } from '../client';
import { CliError } from '../errors';
import { age, formatDuration, printStructured, table, type OutputFormat } from '../output';

export const GET_KINDS = ['definitions', 'pipelines', 'resources', 'runs', 'drivers', 'schedules', 'triggers'] as const;
type GetKind = (typeof GET_KINDS)[number];

/** Singular and short spellings, as kubectl accepts them. */
const ALIASES: Record<string, GetKind> = {
  definition: 'definitions', definitions: 'definitions', def: 'definitions', defs: 'definitions', 'resource-definitions': 'definitions',
  pipeline: 'pipelines', pipelines: 'pipelines', pl: 'pipelines',
  resource: 'resources', resources: 'resources', res: 'resources',
  run: 'runs', runs: 'runs',
  driver: 'drivers', drivers: 'drivers', agents: 'drivers', agent: 'drivers',
  schedule: 'schedules', schedules: 'schedules', sched: 'schedules',
  trigger: 'triggers', triggers: 'triggers', hook: 'triggers', hooks: 'triggers',
};

export function parseKind(kind: string): GetKind {
  const k = ALIASES[kind.toLowerCase()];
  if (!k) throw new CliError(`unknown kind "${kind}": use ${GET_KINDS.join(', ')}`);
  return k;
}

/** `conveyor get KIND [NAME] [-o json|yaml]`. */
export async function get(client: GatewayClient, kind: GetKind, name: string | undefined, format: OutputFormat, opts: { limit?: number } = {}): Promise<void> {
  const n = name === undefined ? undefined : encodeURIComponent(name);
  switch (kind) {
    case 'definitions': {
      const items = n ? [await client.get<ResourceDefinition>(`/resource-definitions/${n}`)] : await client.get<ResourceDefinition[]>('/resource-definitions');
      if (printStructured(format, n ? items[0] : items)) return;
      out(table(['NAME', 'VERSION', 'UPDATED', 'DESCRIPTION'], items.map((d) => [d.name, d.version, age(d.updatedAt), d.description])));
      return;
    }
    case 'pipelines': {
      const items = n ? [await client.get<Pipeline>(`/pipelines/${n}`)] : await client.get<Pipeline[]>('/pipelines');
      if (printStructured(format, n ? items[0] : items)) return;
      out(table(['NAME', 'RESOURCE', 'STEPS', 'UPDATED', 'DESCRIPTION'], items.map((p) => [p.name, p.resource, p.steps.map((s) => s.driver).join(' > '), age(p.updatedAt), p.description])));
      return;
    }
    case 'resources': {
      const all = await client.get<Resource[]>('/resources');
      // NAME may be `name` or `type/name`.
      const items = name === undefined ? all : all.filter((r) => r.name === name || `${r.resource}/${r.name}` === name);
      if (name !== undefined && !items.length) throw new CliError(`resource "${name}" not found`);
      if (printStructured(format, name !== undefined && items.length === 1 ? items[0] : items)) return;
      out(table(['TYPE', 'NAME', 'VERSION', 'PIPELINE', 'LAST RUN', 'AGE'], items.map((r) => [r.resource, r.name, r.version, r.pipeline, r.runid, age(r.createdAt)])));
      return;
    }
    case 'runs': {
      const items = n ? [await client.get<Run>(`/runs/${n}`)] : await client.get<Run[]>(`/runs?limit=${opts.limit ?? 50}`);
      if (printStructured(format, n ? items[0] : items)) return;
      out(table(['ID', 'PIPELINE', 'RESOURCE', 'STATUS', 'STEP', 'AGE', 'DURATION'], items.map((r) => [
        r.id, r.pipeline.name, `${r.resource.type}/${r.resource.name}@${r.resource.version}`, r.status, currentStep(r), age(r.createdAt), formatDuration(runDuration(r)),
      ])));
      return;
    }
    case 'drivers': {
      const all = await client.get<AgentInfo[]>('/drivers');
      const items = name === undefined ? all : all.filter((a) => a.id === name || a.drivers.includes(name));
      if (printStructured(format, items)) return;
      out(table(['AGENT', 'MACHINE', 'DRIVERS', 'RUNNING', 'CONCURRENCY', 'HEARTBEAT', 'UP'], items.map((a) => [
        a.id, a.machine, a.drivers.join(','), a.running.length, a.concurrency, `${age(a.lastHeartbeat)} ago`, age(a.startedAt),
      ])));
      return;
    }
    case 'schedules': {
      type Shown = Schedule & { next: string | null };
      const items = n ? [await client.get<Shown>(`/schedules/${n}`)] : await client.get<Shown[]>('/schedules');
      if (printStructured(format, n ? items[0] : items)) return;
      out(table(['NAME', 'CRON', 'TIMEZONE', 'PIPELINE', 'RESOURCE', 'NEXT', 'LAST', 'LAST RUN'], items.map((s) => [
        s.name, s.cron, s.timezone ?? 'UTC', s.pipeline, `${s.resource}/${s.resourceName}`, s.next ?? '-', s.last ? `${age(s.last.at)} ago` : '-', s.last?.runid ?? s.last?.error,
      ])));
      return;
    }
    case 'triggers': {
      type Shown = Trigger & { hook: string };
      const items = n ? [await client.get<Shown>(`/triggers/${n}`)] : await client.get<Shown[]>('/triggers');
      if (printStructured(format, n ? items[0] : items)) return;
      out(table(['NAME', 'SOURCE', 'EVENTS', 'BRANCHES', 'PIPELINE', 'HOOK', 'LAST', 'LAST RUN'], items.map((t) => [
        t.name, t.source, t.events.join(','), t.branches?.join(',') ?? '*', t.pipeline, t.hook, t.last ? `${t.last.outcome} ${age(t.last.at)} ago` : '-', t.last?.runid ?? t.last?.reason,
      ])));
      return;
    }
  }
}

/** The step a run is at: the running one, else the last one that ended. */
export function currentStep(run: Run): string | undefined {
  const active = run.steps.find((s) => s.status === 'running' || s.status === 'retrying');
  if (active) return `${active.id} (${active.driver})`;
  const done = [...run.steps].reverse().find((s) => s.status !== 'pending');
  return done ? `${done.id} (${done.driver})` : undefined;
}

export function runDuration(run: Run, now = Date.now()): number | undefined {
  if (run.durationMs !== undefined) return run.durationMs;
  const start = run.startedAt ?? run.createdAt;
  return start ? (run.finishedAt ? Date.parse(run.finishedAt) : now) - Date.parse(start) : undefined;
}

function out(text: string): void {
  process.stdout.write(text);
}
