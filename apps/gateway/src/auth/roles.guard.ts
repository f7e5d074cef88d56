import { type CanActivate, type ExecutionContext, ForbiddenException, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { roleAllows, TokenAuthenticator } from '@conveyor/auth';
import { isOpenRoute, requiredRole } from './access-policy';
import type { AuthenticatedRequest } from './auth.middleware';

/** Authorization for Nest routes: 403 when the token's role may not use the route (see access-policy.ts). */
@Injectable()
export class RolesGuard implements CanActivate {
  constructor(@Inject(TokenAuthenticator) private readonly auth: TokenAuthenticator) {}

  canActivate(context: ExecutionContext): boolean {
    if (!this.auth.enabled || context.getType() !== 'http') return true;
    const req = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const routePath: string = req.route?.path ?? req.path;
    if (isOpenRoute(req.method, routePath)) return true;
    // The middleware let it through only with a valid token; a route reached without one is a wiring bug: refuse.
    if (!req.conveyorRole) throw new UnauthorizedException('this API needs a bearer token (Authorization: Bearer <token>)');
    const need = requiredRole(req.method, routePath);
    if (!roleAllows(req.conveyorRole, need)) {
      throw new ForbiddenException(`a "${req.conveyorRole}" token may not ${req.method} ${routePath}; it needs the "${need}" role`);
    }
    return true;
  }
}
