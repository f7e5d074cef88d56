import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import { parseHash, type Route } from './lib/router';

export type Role = 'read' | 'write' | 'admin';
const RANK: Record<Role, number> = { read: 0, write: 1, admin: 2 };

/** Who is signed in: the role decides which actions the pages offer (the API decides what is allowed). */
export interface Session {
  role: Role;
  authenticated: boolean;
  signOut(): void;
}

export const SessionContext = createContext<Session>({ role: 'read', authenticated: false, signOut: () => undefined });

export function useSession(): Session {
  return useContext(SessionContext);
}

export function may(session: Session, role: Role): boolean {
  return RANK[session.role] >= RANK[role];
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** A clock for ages and running durations, ticking every `ms`. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

export interface Loaded<T> {
  data?: T;
  error?: Error;
  loading: boolean;
  reload(): void;
  set(data: T): void;
}

/** Loads `load()` when `deps` change (the previous load is aborted) and on `reload()`. */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  const loader = useRef(load);
  loader.current = load;
  useEffect(() => {
    const abort = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    loader.current(abort.signal).then(
      (data) => !abort.signal.aborted && setState({ data, loading: false }),
      (error: Error) => !abort.signal.aborted && setState((s) => ({ data: s.data, error, loading: false })),
    );
    return () => abort.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const set = useCallback((data: T) => setState({ data, loading: false }), []);
  return { ...state, reload, set };
}

/** Sets the document title (what a screen reader announces first on a new page). */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · Conveyor`;
  }, [title]);
}
