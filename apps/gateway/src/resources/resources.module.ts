import { Module } from '@nestjs/common';
import { RunsModule } from '../runs/runs.module';
import { ResourcesController } from './resources.controller';
import { ResourcesService } from './resources.service';

@Module({ imports: [RunsModule], controllers: [ResourcesController], providers: [ResourcesService], exports: [ResourcesService] })
export class ResourcesModule {}
