import { Module } from '@nestjs/common';
import type { KV } from '@nats-io/kv';
import { JETSTREAM, openHookDeliveriesBucket, openTriggersBucket, type JetStreamContext } from '@conveyor/jetstream';
import { MetricsModule } from '../metrics/metrics.module';
import { ResourcesModule } from '../resources/resources.module';
import { RunsModule } from '../runs/runs.module';
import { HookDeliveries } from './hook-deliveries.service';
import { HooksController } from './hooks.controller';
import { TriggersController } from './triggers.controller';
import { TriggersService } from './triggers.service';
import { TriggersStore } from './triggers.store';

/** Webhook triggers: their API, and the open endpoint forges deliver events to. */
@Module({
  imports: [ResourcesModule, RunsModule, MetricsModule],
  controllers: [TriggersController, HooksController],
  providers: [
    { provide: 'TRIGGERS_KV', useFactory: (ctx: JetStreamContext) => openTriggersBucket(ctx), inject: [JETSTREAM] },
    { provide: 'HOOK_DELIVERIES_KV', useFactory: (ctx: JetStreamContext) => openHookDeliveriesBucket(ctx), inject: [JETSTREAM] },
    { provide: TriggersStore, useFactory: (kv: KV) => new TriggersStore(kv), inject: ['TRIGGERS_KV'] },
    TriggersService,
    HookDeliveries,
  ],
})
export class TriggersModule {}
