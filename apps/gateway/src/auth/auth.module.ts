import { type DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { TokenAuthenticator } from '@conveyor/auth';
import type { ConveyorConfig } from '@conveyor/config';
import { RolesGuard } from './roles.guard';
import { WhoAmIController } from './whoami.controller';

/** The token check (shared with the middleware in bootstrap.ts), the global RolesGuard, and `GET /whoami`. */
@Module({})
export class AuthModule {
  static forRoot(config: ConveyorConfig, auth: TokenAuthenticator = new TokenAuthenticator(config.auth.tokens)): DynamicModule {
    return {
      module: AuthModule,
      global: true,
      controllers: [WhoAmIController],
      providers: [{ provide: TokenAuthenticator, useValue: auth }, { provide: APP_GUARD, useClass: RolesGuard }],
      exports: [TokenAuthenticator],
    };
  }
}
