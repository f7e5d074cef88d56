import { type DynamicModule, Module } from '@nestjs/common';
import type { ConveyorConfig } from '@conveyor/config';
import { JETSTREAM, type JetStreamContext } from '@conveyor/jetstream';
import { openSecretsBucket, SecretsStore } from '@conveyor/secrets';
import { SecretsController } from './secrets.controller';
import { SecretsService } from './secrets.service';

/** PUT/GET/DELETE /secrets and the reference check used by the resources service (global). */
@Module({})
export class SecretsModule {
  static forRoot(config: ConveyorConfig): DynamicModule {
    return {
      module: SecretsModule,
      global: true,
      controllers: [SecretsController],
      providers: [
        {
          provide: SecretsStore,
          useFactory: async (ctx: JetStreamContext) => new SecretsStore(await openSecretsBucket(ctx), config.secretKey),
          inject: [JETSTREAM],
        },
        SecretsService,
      ],
      exports: [SecretsService],
    };
  }
}
