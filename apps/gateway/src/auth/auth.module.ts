import { type DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { TokenAuthenticator } from '@conveyor/auth';
import type { ConveyorConfig } from '@conveyor/config';
import { RolesGuard } from './roles.guard';

/** The token check (shared with the middleware in bootstrap.ts) and the global RolesGuard. */
@Module({})
export class AuthModule {
  static forRoot(config: ConveyorConfig, auth: TokenAuthenticator = new TokenAuthenticator(config.auth.tokens)): DynamicModule {
    return {
      module: AuthModule,
      global: true,
      providers: [{ provide: TokenAuthenticator, useValue: auth }, { provide: APP_GUARD, useClass: RolesGuard }],
      exports: [TokenAuthenticator],
    };
  }
}
