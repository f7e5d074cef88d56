import type { Resource, TriggerOrigin } from '@conveyor/contracts/models';

/** What made a run's resource version: a webhook delivery, a schedule's tick, or a client (undefined). */
export type VersionOrigin = { kind: 'trigger'; origin: TriggerOrigin } | { kind: 'schedule'; schedule: string; tickAt?: string; catchUp: boolean };

/**
 * Read from the version itself: `trigger` is set by the gateway's hook endpoint only, and a
 * schedule's tick writes `metadata.schedule` and `metadata.tickAt` (a client could write those
 * too, which is why the page says "scheduled by" and links the schedule rather than claiming more).
 */
export function originOf(version: Pick<Resource, 'trigger' | 'metadata'>): VersionOrigin | undefined {
  if (version.trigger) return { kind: 'trigger', origin: version.trigger };
  const m = version.metadata ?? {};
  if (typeof m.schedule === 'string' && m.schedule) {
    return { kind: 'schedule', schedule: m.schedule, ...(typeof m.tickAt === 'string' ? { tickAt: m.tickAt } : {}), catchUp: m.catchUp === true };
  }
  return undefined;
}

/** `main` for `refs/heads/main`, `v1` for `refs/tags/v1`; any other ref as it is (a pull request's head ref). */
export function refName(ref: string): string {
  return ref.replace(/^refs\/(heads|tags)\//, '');
}

/** The first 7 hex digits, as git abbreviates a commit. */
export function shortCommit(commit: string): string {
  return /^[0-9a-f]{8,}$/i.test(commit) ? commit.slice(0, 7) : commit;
}

/** The URL to paste into the forge's webhook settings: the API's `hook` path on the address the dashboard is served from. */
export function hookUrl(pageOrigin: string, hook: string): string {
  return new URL(hook, pageOrigin).toString();
}

/** An artifact's download path: each segment of its name encoded, the slashes kept (the API reads them as one name). */
export function artifactPath(runId: string, name: string): string {
  return `/runs/${encodeURIComponent(runId)}/artifacts/${name.split('/').map(encodeURIComponent).join('/')}`;
}
