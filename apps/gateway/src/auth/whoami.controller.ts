import { Controller, Get, Inject, Req, UnauthorizedException } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { TokenAuthenticator, type Role } from '@conveyor/auth';
import type { AuthenticatedRequest } from './auth.middleware';

export interface WhoAmI {
  role: Role;
  /** false when the API has no tokens: everyone may do everything. */
  authenticated: boolean;
}

/** What the caller's token may do, so a client (the web dashboard) shows only what it can use. */
@ApiTags('auth')
@Controller('whoami')
export class WhoAmIController {
  constructor(@Inject(TokenAuthenticator) private readonly auth: TokenAuthenticator) {}

  @Get()
  @ApiOperation({ summary: "The caller's role (read, write or admin); without API tokens configured, admin and not authenticated" })
  whoami(@Req() req: AuthenticatedRequest): WhoAmI {
    if (!this.auth.enabled) return { role: 'admin', authenticated: false };
    // The middleware lets only a valid token through; never guess a role without one.
    if (!req.conveyorRole) throw new UnauthorizedException('this API needs a bearer token (Authorization: Bearer <token>)');
    return { role: req.conveyorRole, authenticated: true };
  }
}
