import { Module, type OnModuleInit, Inject } from '@nestjs/common';
import { JETSTREAM, provisionReportsStream, type JetStreamContext } from '@conveyor/jetstream';
import { MetricsModule } from '../metrics/metrics.module';
import { ReportOutbox } from './report-outbox.service';
import { ReportSender } from './report-sender.service';

/** Commit statuses and notifications: the outbox the run projector stores them in, and the shared sender. */
@Module({
  imports: [MetricsModule],
  providers: [ReportOutbox, ReportSender],
  exports: [ReportOutbox],
})
export class ReportsModule implements OnModuleInit {
  constructor(@Inject(JETSTREAM) private readonly ctx: JetStreamContext) {}

  async onModuleInit(): Promise<void> {
    await provisionReportsStream(this.ctx);
  }
}
