import type { Role } from '@conveyor/auth';

/**
 * The role each route needs, in one table so that it can be read and audited at a glance.
 * `routePath` is Nest's route pattern (e.g. `/resources/:type/:name`), never the raw URL, so
 * case or slash tricks in a request cannot change the answer. Anything not listed needs
 * admin for a change and read for a read.
 */
const WRITE_ROUTES = new Set([
  'POST /resources',
  'PUT /resources/:type/:name',
  'POST /runs/:id/cancel',
  'POST /runs/:id/rerun',
  'POST /runs/:id/steps/:stepId/approve',
  'POST /runs/:id/steps/:stepId/reject',
]);

/**
 * Routes open without a token: the health check, and forges' webhook deliveries, which the
 * trigger's own signature authenticates (see the triggers' HookDeliveries).
 */
export function isOpenRoute(method: string, routePath: string): boolean {
  return routePath === '/health' || (method.toUpperCase() === 'POST' && routePath === '/hooks/:trigger');
}

export function requiredRole(method: string, routePath: string): Role {
  const m = method.toUpperCase();
  // Even the names of secrets are for admins only.
  if (routePath === '/secrets' || routePath.startsWith('/secrets/')) return 'admin';
  if (m === 'GET' || m === 'HEAD' || m === 'OPTIONS') return 'read';
  if (WRITE_ROUTES.has(`${m} ${routePath}`)) return 'write';
  return 'admin';
}
