import { createHash } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Role, TokenAuthenticator } from '@conveyor/auth';

/** The role the middleware found for a request; read by the RolesGuard. */
export interface AuthenticatedRequest extends Request {
  conveyorRole?: Role;
  /** Who made the request, for the record (an approval): the token's role and the start of its SHA-256, never the token. */
  conveyorCaller?: string;
}

/** Paths open without a token (exact: anything else, e.g. `/HEALTH/`, needs one). */
const OPEN_PATHS = new Set(['/health']);

/** A forge's webhook delivery: the trigger's signature authenticates it, not a token. */
const HOOK_PATH = /^\/hooks\/[^/]+$/;

export function isOpenPath(path: string, method = 'GET'): boolean {
  return OPEN_PATHS.has(path) || (method === 'POST' && HOOK_PATH.test(path));
}

/** Browsers' EventSource cannot send headers: SSE streams also take `?access_token=`. */
const SSE_PATH = /^\/logs\/(pipeline|streams)\/|^\/runs\/events$/;

/**
 * Authentication for every path the app serves, Nest routes or not (`/docs`, `/metrics`):
 * installed as the first middleware, before the body is read. 401 with
 * `WWW-Authenticate: Bearer` without a valid token; which role may do what is the
 * RolesGuard's job (403).
 */
export function authMiddleware(auth: TokenAuthenticator) {
  return (req: AuthenticatedRequest, res: Response, next: NextFunction): void => {
    if (!auth.enabled || isOpenPath(req.path, req.method)) return next();
    const token = bearerToken(req);
    const role = auth.authenticate(token);
    if (!role) {
      const message = token === undefined ? 'this API needs a bearer token (Authorization: Bearer <token>)' : 'the bearer token is not valid';
      res
        .status(401)
        .set('WWW-Authenticate', token === undefined ? 'Bearer realm="conveyor"' : 'Bearer realm="conveyor", error="invalid_token"')
        .json({ statusCode: 401, error: 'Unauthorized', message });
      return;
    }
    req.conveyorRole = role;
    req.conveyorCaller = `a ${role} token (sha256:${createHash('sha256').update(token!, 'utf8').digest('hex').slice(0, 12)})`;
    next();
  };
}

function bearerToken(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (typeof header === 'string' && header.trim()) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header.trim());
    return m ? m[1] : '';
  }
  if (req.method === 'GET' && SSE_PATH.test(req.path)) {
    const q = req.query.access_token;
    if (typeof q === 'string') return q;
  }
  return undefined;
}
