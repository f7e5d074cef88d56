/**
 * The API, from the browser: same origin, the token (if any) from this tab's session storage
 * (never local storage: it goes when the tab closes), errors as ApiError with the server's
 * status, message and details. A 401 anywhere sends the user to the sign-in page.
 */

const TOKEN_KEY = 'conveyor.token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: string[] = [],
  ) {
    super(message);
  }
}

type Listener = () => void;
const unauthorized = new Set<Listener>();

/** Called on every 401 (the app shows the sign-in page). */
export function onUnauthorized(l: Listener): () => void {
  unauthorized.add(l);
  return () => unauthorized.delete(l);
}

export function getToken(): string | undefined {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

export function setToken(token: string | undefined): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function authHeaders(): Record<string, string> {
  const t = getToken();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

export interface ApiResponse<T> {
  body: T;
  headers: Headers;
}

export async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<ApiResponse<T>> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      signal,
      headers: { Accept: 'application/json', ...authHeaders(), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, `the gateway cannot be reached (${(err as Error).message})`);
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  if (!res.ok) {
    if (res.status === 401) for (const l of unauthorized) l();
    const e = (parsed ?? {}) as { message?: unknown; details?: unknown };
    const message = typeof e.message === 'string' ? e.message : Array.isArray(e.message) ? e.message.join('; ') : `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, message, Array.isArray(e.details) ? e.details.map(String) : []);
  }
  return { body: parsed as T, headers: res.headers };
}

export const api = {
  get: async <T>(path: string, signal?: AbortSignal) => (await request<T>('GET', path, undefined, signal)).body,
  post: async <T>(path: string, body?: unknown) => (await request<T>('POST', path, body ?? {})).body,
  del: async (path: string) => void (await request<unknown>('DELETE', path)),
};

/**
 * Saves what `path` answers as a file named `name`. A plain link would send no token, so the
 * bytes come through fetch with the Authorization header and are handed to the browser as a
 * blob URL (held in memory: fine for the artifacts a dashboard user downloads by hand).
 */
export async function downloadFile(path: string, name: string): Promise<void> {
  let res: Response;
  try {
    res = await fetch(path, { headers: authHeaders() });
  } catch (err) {
    throw new ApiError(0, `the gateway cannot be reached (${(err as Error).message})`);
  }
  if (!res.ok) {
    if (res.status === 401) for (const l of unauthorized) l();
    const e = (await res.json().catch(() => ({}))) as { message?: unknown };
    throw new ApiError(res.status, typeof e.message === 'string' ? e.message : `${res.status} ${res.statusText}`);
  }
  saveBlob(await res.blob(), name);
}

/** Hands `blob` to the browser as a download named `name`. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  // The click has started the download; the browser keeps its own copy.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** `?a=1&b=x` from the defined values only. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
