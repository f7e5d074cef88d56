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
