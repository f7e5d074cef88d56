import { Module } from '@nestjs/common';
import { JETSTREAM, type JetStreamContext } from '@conveyor/jetstream';
import { LogFanout, LogReader } from '@conveyor/logs';
import { LogsController } from './logs.controller';

@Module({
  controllers: [LogsController],
  providers: [
    { provide: LogReader, useFactory: (ctx: JetStreamContext) => new LogReader(ctx.js, ctx.jsm, ctx.subjects), inject: [JETSTREAM] },
    { provide: LogFanout, useFactory: (reader: LogReader) => new LogFanout(reader), inject: [LogReader] },
  ],
})
export class LogsModule {}
