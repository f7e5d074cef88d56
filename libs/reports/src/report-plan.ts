import type { Forge, JsonObject, ReportJob, Run, TriggerOrigin } from '@conveyor/contracts';

/** GitHub keeps at most 140 characters of a status's description. */
const DESCRIPTION_MAX = 140;

export type RunMoment = 'start' | 'end';

/**
 * The reports a run's start or end calls for: the commit status of a run a webhook started
 * (pending at its start, its outcome at its end), and at its end a notification for each of
 * its pipeline's `notify` targets whose `on` names the outcome. Pure: the same run and moment
 * always give the same jobs with the same ids, which is what makes publishing them idempotent.
 */
export function plannedReports(run: Run, moment: RunMoment, opts: { publicUrl: string; now: string }): ReportJob[] {
  const jobs: ReportJob[] = [];
  const url = runUrl(opts.publicUrl, run.id);
  const base = { v: 1 as const, runId: run.id, createdAt: opts.now };
  const origin = run.trigger;
  const target = origin && statusTarget(origin, run.pipeline.name);
  const ended = moment === 'end' && (run.status === 'succeeded' || run.status === 'failed' || run.status === 'cancelled') ? run.status : undefined;
  if (origin && target && (moment === 'start' || ended)) {
    jobs.push({
      ...base,
      id: `${run.id}.status.${moment}`,
      kind: 'status',
      status: {
        target,
        commit: origin.commit,
        ref: origin.ref,
        state: statusState(target.forge, ended ?? 'running'),
        description: truncate(ended ? endDescription(run) : `Running pipeline ${run.pipeline.name}`, DESCRIPTION_MAX),
        url,
      },
    });
  }
  if (ended) {
    for (const [i, n] of (run.pipeline.notify ?? []).entries()) {
      if (!n.on.includes(ended)) continue;
      jobs.push({ ...base, id: `${run.id}.notify.${i}`, kind: 'notification', notification: { target: n, event: ended, summary: runSummary(run, ended, url) } });
    }
  }
  return jobs;
}

/** The dashboard's page of a run. */
export function runUrl(publicUrl: string, runId: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/#/runs/${encodeURIComponent(runId)}`;
}

/**
 * Where an origin's status goes, complete: the forge (the trigger's source unless named), the
 * project (from the event, else the clone URL's path; empty when neither says, which the sender
 * records as a failed report saying so, rather than reporting nothing) and the context.
 * Undefined without a forge (a generic trigger that names none: the trigger API refuses that).
 */
export function statusTarget(origin: TriggerOrigin, pipeline: string): NonNullable<ReportJob['status']>['target'] | undefined {
  const s = origin.status;
  if (!s) return undefined;
  const forge: Forge | undefined = s.forge ?? (origin.source === 'generic' ? undefined : origin.source);
  const project = s.project ?? origin.project ?? projectOfCloneUrl(origin.repository) ?? '';
  if (!forge) return undefined;
  return { ...s, forge, project, context: s.context ?? `conveyor/${pipeline}` };
}

/** `owner/name` from `https://host/owner/name.git` or `git@host:owner/name.git`. */
export function projectOfCloneUrl(url: string): string | undefined {
  const path = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? safePath(url) : url.replace(/^[^@/]+@[^:]+:/, '');
  const p = path?.replace(/^\/+|\/+$/g, '').replace(/\.git$/, '');
  return p && p.includes('/') ? p : undefined;
}

function safePath(url: string): string | undefined {
  try {
    return new URL(url).pathname;
  } catch {
    return undefined;
  }
}

/** The forge's word for a run that is running or ended so. */
export function statusState(forge: Forge, status: 'running' | 'succeeded' | 'failed' | 'cancelled'): string {
  if (forge === 'gitlab') return { running: 'running', succeeded: 'success', failed: 'failed', cancelled: 'canceled' }[status];
  return { running: 'pending', succeeded: 'success', failed: 'failure', cancelled: 'error' }[status];
}

function endDescription(run: Run): string {
  const took = run.durationMs !== undefined ? ` in ${formatDuration(run.durationMs)}` : '';
  if (run.status === 'succeeded') return `Succeeded${took}`;
  if (run.status === 'cancelled') return `Cancelled${run.message ? `: ${run.message}` : ''}`;
  return `Failed${took}${run.message ? `: ${run.message}` : ''}`;
}

function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

function truncate(s: string, max: number): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length <= max ? one : `${one.slice(0, max - 1)}…`;
}

/** The JSON a notification posts: what a chat bot or a dashboard needs to say what happened and link to it. */
export function runSummary(run: Run, event: 'succeeded' | 'failed' | 'cancelled', url: string): JsonObject {
  const o = run.trigger;
  return {
    event: `run.${event}`,
    run: {
      id: run.id,
      status: run.status,
      ...(run.message ? { message: run.message } : {}),
      pipeline: run.pipeline.name,
      resource: { type: run.resource.type, name: run.resource.name, version: run.resource.version },
      createdAt: run.createdAt,
      ...(run.startedAt ? { startedAt: run.startedAt } : {}),
      ...(run.finishedAt ? { finishedAt: run.finishedAt } : {}),
      ...(run.durationMs !== undefined ? { durationMs: run.durationMs } : {}),
      url,
      steps: run.steps.map((s) => ({ id: s.id, driver: s.driver, status: s.status, attempts: s.attempts, ...(s.durationMs !== undefined ? { durationMs: s.durationMs } : {}), ...(s.message ? { message: s.message } : {}) })),
    },
    ...(o ? { trigger: { name: o.trigger, source: o.source, event: o.event, repository: o.repository, ref: o.ref, commit: o.commit, ...(o.sender ? { sender: o.sender } : {}) } } : {}),
  };
}
