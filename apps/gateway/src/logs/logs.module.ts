import { Module } from '@nestjs/common';
import { JETSTREAM, type JetStreamContext } from '@conveyor/jetstream';
import { LogReader } from '@conveyor/logs';
import { LogsController } from './logs.controller';

@Module({
  controllers: [LogsController],
  providers: [{ provide: LogReader, useFactory: (ctx: JetStreamContext) => new LogReader(ctx.js, ctx.jsm, ctx.subjects), inject: [JETSTREAM] }],
})
export class LogsModule {}
