import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** What a token may do: `read` reads, `write` also creates/updates resources and cancels runs, `admin` does everything. */
export type Role = 'read' | 'write' | 'admin';

export const ROLES: readonly Role[] = ['read', 'write', 'admin'];

export interface ApiToken {
  token: string;
  role: Role;
}

/** Shorter tokens are refused at start-up: they could be guessed. */
export const MIN_TOKEN_LENGTH = 16;

export interface ApiAuthConfig {
  tokens: ApiToken[];
  /** CONVEYOR_ALLOW_UNAUTHENTICATED=true: serve without tokens on a non-loopback address. */
  allowUnauthenticated: boolean;
}

/**
 * `token:role,token:role` (a file may also put one per line; `#` starts a comment). A bad
 * entry stops the process at start-up with a message that names the variable but never the
 * token itself.
 */
export function parseApiTokens(text: string, source: string): ApiToken[] {
  const entries = text
    .split(/[\n,]/)
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter(Boolean);
  const seen = new Set<string>();
  return entries.map((entry, i) => {
    const at = entry.lastIndexOf(':');
    const token = at > 0 ? entry.slice(0, at).trim() : '';
    const role = (at > 0 ? entry.slice(at + 1).trim() : '') as Role;
    if (!token || !ROLES.includes(role)) throw new Error(`${source}: entry ${i + 1} must be "token:role" with role read, write or admin`);
    if (token.length < MIN_TOKEN_LENGTH) throw new Error(`${source}: the token of entry ${i + 1} is shorter than ${MIN_TOKEN_LENGTH} characters`);
    if (/\s/.test(token)) throw new Error(`${source}: the token of entry ${i + 1} contains white space`);
    if (seen.has(token)) throw new Error(`${source}: entry ${i + 1} repeats a token`);
    seen.add(token);
    return { token, role };
  });
}

/** CONVEYOR_API_TOKENS, or CONVEYOR_API_TOKENS_FILE (not both), and CONVEYOR_ALLOW_UNAUTHENTICATED. */
export function loadApiAuthConfig(env: Record<string, string | undefined>): ApiAuthConfig {
  const inline = env.CONVEYOR_API_TOKENS?.trim();
  const file = env.CONVEYOR_API_TOKENS_FILE?.trim();
  if (inline && file) throw new Error('set CONVEYOR_API_TOKENS or CONVEYOR_API_TOKENS_FILE, not both');
  let tokens: ApiToken[] = [];
  if (inline) tokens = parseApiTokens(inline, 'CONVEYOR_API_TOKENS');
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`CONVEYOR_API_TOKENS_FILE=${file}: cannot read it (${(err as Error).message})`);
    }
    tokens = parseApiTokens(text, `CONVEYOR_API_TOKENS_FILE=${file}`);
    if (!tokens.length) throw new Error(`CONVEYOR_API_TOKENS_FILE=${file}: holds no token`);
  }
  const allow = (env.CONVEYOR_ALLOW_UNAUTHENTICATED ?? '').trim().toLowerCase();
  if (allow && !['true', 'false'].includes(allow)) throw new Error(`CONVEYOR_ALLOW_UNAUTHENTICATED=${allow}: expected true or false`);
  return { tokens, allowUnauthenticated: allow === 'true' };
}

/** Does `have` include what `need` allows? admin > write > read. */
export function roleAllows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * Checks presented tokens in constant time: both sides are hashed to the same length and
 * compared with timingSafeEqual, and every configured token is compared every time, so the
 * time taken says nothing about which token (or how much of one) matched.
 */
export class TokenAuthenticator {
  private readonly hashed: Array<{ hash: Buffer; role: Role }>;

  constructor(tokens: ApiToken[]) {
    this.hashed = tokens.map((t) => ({ hash: digest(t.token), role: t.role }));
  }

  /** False when no token is configured: the API is open (loopback only, unless allowed). */
  get enabled(): boolean {
    return this.hashed.length > 0;
  }

  /** The role of a valid token, undefined for anything else. */
  authenticate(presented: string | undefined): Role | undefined {
    if (!presented) return undefined;
    const h = digest(presented);
    let found: Role | undefined;
    for (const t of this.hashed) if (timingSafeEqual(h, t.hash) && !found) found = t.role;
    return found;
  }
}

/** Addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === '[::1]';
}

/**
 * Refuses to serve an open API on an address other machines can reach. Returns the warning
 * to log at start-up when the API is unauthenticated, or undefined when tokens are set.
 */
export function checkExposure(host: string, auth: ApiAuthConfig): string | undefined {
  if (auth.tokens.length) return undefined;
  if (!isLoopbackHost(host) && !auth.allowUnauthenticated) {
    throw new Error(
      `refusing to listen on ${host} without API tokens: set CONVEYOR_API_TOKENS (or CONVEYOR_API_TOKENS_FILE), ` +
        'listen on 127.0.0.1 (CONVEYOR_HTTP_HOST), or set CONVEYOR_ALLOW_UNAUTHENTICATED=true if something else guards the port',
    );
  }
  return `the API is UNAUTHENTICATED (no CONVEYOR_API_TOKENS): anyone who reaches ${host} may read and change everything`;
}
