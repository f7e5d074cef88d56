/**
 * Dashboard addresses live in the URL's fragment (`/#/runs/<id>?step=build&line=42`): the API
 * owns the paths (`/runs/<id>` answers JSON), so the dashboard's own routes never collide with
 * them, and every view — a run, a step's log, a line — has an address one can share.
 */

export interface Route {
  /** Path segments after `#/`, e.g. `['runs', '01j…']`. */
  parts: string[];
  query: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const parts = path.split('/').filter(Boolean).map(safeDecode);
  return { parts, query: new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '') };
}

export function href(parts: string[], query?: Record<string, string | number | undefined>): string {
  const path = parts.map(encodeURIComponent).join('/');
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== '') q.set(k, String(v));
  const qs = q.toString();
  return `#/${path}${qs ? `?${qs}` : ''}`;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
