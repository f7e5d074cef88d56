import type { OpenAPIObject } from '@nestjs/swagger';
import { isOpenRoute, requiredRole } from './access-policy';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

/**
 * Declares the API's authentication in the OpenAPI document from the same table the gateway
 * enforces (access-policy.ts), so the document cannot drift from the checks: every operation
 * needs a bearer token of the role named in `x-conveyor-role`, except the open routes (health, webhooks).
 */
export function declareBearerAuth(doc: OpenAPIObject): OpenAPIObject {
  for (const [path, item] of Object.entries(doc.paths)) {
    const routePath = path.replace(/\{([^}]+)\}/g, ':$1');
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      if (isOpenRoute(method, routePath)) {
        op.security = [];
        continue;
      }
      const role = requiredRole(method, routePath);
      op.security = [{ bearer: [] }];
      Object.assign(op, { 'x-conveyor-role': role });
      op.description = [op.description, `Needs a token with the ${role} role (or a stronger one) when tokens are configured.`].filter(Boolean).join('\n\n');
    }
  }
  return doc;
}
