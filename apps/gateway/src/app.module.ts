import { type DynamicModule, Module } from '@nestjs/common';
import type { ConveyorConfig } from '@conveyor/config';
import { JetStreamModule } from '@conveyor/jetstream';
import { StoresModule } from './common/stores.module';
import { DefinitionsModule } from './definitions/definitions.module';
import { DriversModule } from './drivers/drivers.module';
import { HealthModule } from './health/health.module';
import { LogsModule } from './logs/logs.module';
import { PipelinesModule } from './pipelines/pipelines.module';
import { ResourcesModule } from './resources/resources.module';
import { RunsModule } from './runs/runs.module';

@Module({})
export class AppModule {
  static forRoot(config: ConveyorConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [JetStreamModule.forRoot(config), StoresModule, DefinitionsModule, PipelinesModule, ResourcesModule, RunsModule, LogsModule, DriversModule, HealthModule],
    };
  }
}
