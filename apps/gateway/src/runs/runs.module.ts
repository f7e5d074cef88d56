import { Module } from '@nestjs/common';
import { MetricsModule } from '../metrics/metrics.module';
import { ReportsModule } from '../reports/reports.module';
import { StalledWorkWatchdog } from './stalled-work-watchdog.service';
import { CreatedRuns } from './created-runs';
import { RunProjector } from './run-projector.service';
import { RunFeeds } from './run-feeds.service';
import { RunReconciler } from './run-reconciler.service';
import { RunStarter } from './run-starter.service';
import { RunAdmission } from './run-admission.service';
import { RunsController } from './runs.controller';
import { RunsService } from './runs.service';

@Module({
  imports: [MetricsModule, ReportsModule],
  controllers: [RunsController],
  providers: [CreatedRuns, RunsService, RunFeeds, RunStarter, RunAdmission, RunProjector, RunReconciler, StalledWorkWatchdog],
  exports: [RunStarter, RunAdmission],
})
export class RunsModule {}
