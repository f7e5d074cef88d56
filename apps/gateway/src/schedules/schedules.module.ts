import { Module } from '@nestjs/common';
import type { KV } from '@nats-io/kv';
import { JETSTREAM, openSchedulesBucket, openTickRunsBucket, provisionTicksStream, type JetStreamContext } from '@conveyor/jetstream';
import { MetricsModule } from '../metrics/metrics.module';
import { ResourcesModule } from '../resources/resources.module';
import { RunsModule } from '../runs/runs.module';
import { ScheduleTimers } from './schedule-timers.service';
import { SchedulesController } from './schedules.controller';
import { SchedulesService } from './schedules.service';
import { SchedulesStore } from './schedules.store';
import { TickRunner } from './tick-runner.service';

/** Schedules: their API, every gateway's timers that store ticks, and the shared consumer that starts ticks' runs. */
@Module({
  imports: [ResourcesModule, RunsModule, MetricsModule],
  controllers: [SchedulesController],
  providers: [
    { provide: 'SCHEDULES_KV', useFactory: (ctx: JetStreamContext) => openSchedulesBucket(ctx), inject: [JETSTREAM] },
    {
      provide: 'TICK_RUNS_KV',
      useFactory: async (ctx: JetStreamContext) => {
        await provisionTicksStream(ctx);
        return openTickRunsBucket(ctx);
      },
      inject: [JETSTREAM],
    },
    { provide: SchedulesStore, useFactory: (kv: KV) => new SchedulesStore(kv), inject: ['SCHEDULES_KV'] },
    SchedulesService,
    ScheduleTimers,
    TickRunner,
  ],
})
export class SchedulesModule {}
