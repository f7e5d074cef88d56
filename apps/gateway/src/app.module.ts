import { type DynamicModule, Module } from '@nestjs/common';
import type { ConveyorConfig } from '@conveyor/config';
import { JetStreamModule } from '@conveyor/jetstream';
import { TracingShutdown } from '@conveyor/tracing';
import { ArtifactsModule } from './artifacts/artifacts.module';
import { AuthModule } from './auth/auth.module';
import { CachesModule } from './caches/caches.module';
import { ShutdownGate } from './common/shutdown-gate';
import { StoresModule } from './common/stores.module';
import { DeadLettersModule } from './dead-letters/dead-letters.module';
import { DefinitionsModule } from './definitions/definitions.module';
import { DriversModule } from './drivers/drivers.module';
import { HealthModule } from './health/health.module';
import { LogsModule } from './logs/logs.module';
import { MetricsModule } from './metrics/metrics.module';
import { PipelinesModule } from './pipelines/pipelines.module';
import { ResourcesModule } from './resources/resources.module';
import { RunsModule } from './runs/runs.module';
import { SchedulesModule } from './schedules/schedules.module';
import { SecretsModule } from './secrets/secrets.module';
import { TriggersModule } from './triggers/triggers.module';

@Module({})
export class AppModule {
  static forRoot(config: ConveyorConfig): DynamicModule {
    return {
      module: AppModule,
      // Here, in the root module, so that its destroy hook runs first (see ShutdownGate).
      providers: [ShutdownGate, TracingShutdown],
      imports: [JetStreamModule.forRoot(config), StoresModule, DefinitionsModule, PipelinesModule, ResourcesModule, RunsModule, LogsModule, DriversModule, DeadLettersModule, HealthModule, MetricsModule, SchedulesModule, TriggersModule, ArtifactsModule, CachesModule, AuthModule.forRoot(config), SecretsModule.forRoot(config)],
    };
  }
}
