import { Module } from '@nestjs/common';
import { MachineWatchdog } from './machine-watchdog.service';
import { RunProjector } from './run-projector.service';
import { RunStarter } from './run-starter.service';
import { RunsController } from './runs.controller';
import { RunsService } from './runs.service';

@Module({
  controllers: [RunsController],
  providers: [RunsService, RunStarter, RunProjector, MachineWatchdog],
  exports: [RunStarter],
})
export class RunsModule {}
