import { Global, Inject, Logger, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import type { ConveyorConfig } from '@conveyor/config';
import { connectJetStream, type JetStreamContext } from './connection';
import { openBuckets, provisionStreams, type Buckets } from './provision';
import { applyRunsRetention } from './runs-retention';

export const CONVEYOR_CONFIG = Symbol('CONVEYOR_CONFIG');
export const JETSTREAM = Symbol('JETSTREAM');
export const BUCKETS = Symbol('BUCKETS');

/**
 * Provides the app's one NATS connection (JETSTREAM), the state buckets (BUCKETS) and the
 * config (CONVEYOR_CONFIG). Streams and buckets are provisioned on start-up, idempotently,
 * and the runs bucket gets its retention (CONVEYOR_RUNS_MAX_AGE).
 */
@Global()
@Module({})
export class JetStreamModule implements OnApplicationShutdown {
  private static readonly log = new Logger('JetStream');

  constructor(@Inject(JETSTREAM) private readonly ctx: JetStreamContext) {}

  static forRoot(config: ConveyorConfig): DynamicModule {
    return {
      module: JetStreamModule,
      providers: [
        { provide: CONVEYOR_CONFIG, useValue: config },
        {
          provide: JETSTREAM,
          useFactory: async () => {
            const ctx = await connectJetStream(config);
            await provisionStreams(ctx);
            JetStreamModule.log.log(`connected to ${ctx.nc.getServer()} (prefix "${config.prefix}", ${config.replicas} replica(s))`);
            return ctx;
          },
        },
        {
          provide: BUCKETS,
          useFactory: async (ctx: JetStreamContext): Promise<Buckets> => {
            const buckets = await openBuckets(ctx);
            await applyRunsRetention(ctx);
            return buckets;
          },
          inject: [JETSTREAM],
        },
      ],
      exports: [CONVEYOR_CONFIG, JETSTREAM, BUCKETS],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    if (!this.ctx.nc.isClosed()) await this.ctx.nc.drain().catch(() => this.ctx.nc.close());
  }
}
