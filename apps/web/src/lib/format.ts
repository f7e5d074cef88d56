/** How the dashboard writes times and sizes: short, and exact on hover (the `title`). */

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${Math.round(s % 60)} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} m`;
}

/** `3 s ago`, `5 m ago`, …, from `now` (passed in, so a list re-renders the ages with one clock). */
export function formatAge(iso: string | undefined, now: number): string {
  if (!iso) return '—';
  const ms = now - Date.parse(iso);
  if (!Number.isFinite(ms)) return '—';
  if (ms < 5_000) return 'just now';
  return `${formatDuration(ms).replace(/ \d+ (s|m)$/, '')} ago`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/** Milliseconds a run or step took, or has taken so far. */
export function elapsed(startedAt: string | undefined, finishedAt: string | undefined, durationMs: number | undefined, now: number): number | undefined {
  if (durationMs !== undefined) return durationMs;
  if (!startedAt) return undefined;
  return (finishedAt ? Date.parse(finishedAt) : now) - Date.parse(startedAt);
}

/** `in 5 m`, `in 3 h 20 m`, `in 12 days`: how far off a future time is (a schedule's next tick). */
export function formatUntil(iso: string | null | undefined, now: number): string {
  if (!iso) return '—';
  const ms = Date.parse(iso) - now;
  if (!Number.isFinite(ms)) return '—';
  if (ms < 1000) return 'now';
  const days = Math.floor(ms / 86_400_000);
  // Hours stop being readable past two days.
  if (days >= 2) return `in ${days} days`;
  return `in ${formatDuration(ms)}`;
}

/** A time as the reader's locale writes it, optionally in a named zone (a schedule's). */
export function formatTime(iso: string, timeZone?: string): string {
  const d = new Date(iso);
  if (!Number.isFinite(d.getTime())) return iso;
  try {
    // dateStyle does not combine with timeZoneName: the zone is named after the time.
    return timeZone ? `${d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short', timeZone })} ${timeZone}` : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  } catch {
    // An unknown zone (the gateway checked it, but this browser's tz data may be older).
    return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  }
}
