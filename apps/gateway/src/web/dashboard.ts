import { existsSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';

/** The dashboard's page may load only its own scripts and styles and talk only to this gateway. */
export const DASHBOARD_CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/**
 * Where the built dashboard (Vite's output: index.html and assets/) is: CONVEYOR_WEB_DIR, or
 * beside the gateway, compiled (dist/apps/gateway/src → dist/web) or run from its sources
 * (apps/gateway/src → dist/web, under jest).
 */
export function dashboardDir(configured: string | undefined, gatewayDir: string): string {
  if (configured) return configured;
  const candidates = [join(gatewayDir, '../../../web'), join(gatewayDir, '../../../dist/web')];
  return candidates.find((d) => existsSync(join(d, 'index.html'))) ?? candidates[0];
}

/**
 * Serves the dashboard: `/` and `/index.html`, `/assets/*` (names with a content hash: cached
 * for good) and the folder's other top-level files (favicon.svg). Installed before the token
 * check, so the sign-in page loads without a token; the bundle holds no data, which comes from
 * the API with the token. Any other path, and any method but GET and HEAD, goes on to the API
 * untouched. Top-level files need a dot in their name, so no API path (`/runs`, `/docs-json`)
 * can ever be taken by a file.
 */
export function webDashboard(folder: string): RequestHandler {
  const dir = resolve(folder);
  const assets = join(dir, 'assets') + sep;
  const index = join(dir, 'index.html');
  const files = express.static(dir, {
    index: false,
    redirect: false,
    fallthrough: true,
    dotfiles: 'ignore',
    // Called before the file is sent; a Cache-Control set here is kept.
    setHeaders: (res, path) => {
      res.setHeader('X-Content-Type-Options', 'nosniff');
      if (path.startsWith(assets)) res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
      else res.setHeader('Cache-Control', 'no-cache');
      if (path === index) res.setHeader('Content-Security-Policy', DASHBOARD_CSP);
    },
  });
  return (req: Request, res: Response, next: NextFunction): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const path = req.path;
    if (path === '/' || path === '/index.html') {
      if (!existsSync(index)) {
        res.status(404).json({ statusCode: 404, error: 'Not Found', message: 'the web dashboard is not built: run npm run build' });
        return;
      }
      req.url = '/index.html';
      return files(req, res, next);
    }
    if (path.startsWith('/assets/')) {
      // A missing asset is the dashboard's 404, not the API's 401.
      return files(req, res, () => void res.status(404).json({ statusCode: 404, error: 'Not Found', message: `no dashboard asset ${path}` }));
    }
    if (/^\/[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+$/.test(path)) return files(req, res, next);
    next();
  };
}
