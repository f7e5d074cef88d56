import { Module } from '@nestjs/common';
import { DockerModule } from '@conveyor/docker';
import { WorkspaceModule } from '@conveyor/workspace';
import { BuilderDriver } from './builder.driver';

@Module({ imports: [DockerModule, WorkspaceModule], controllers: [BuilderDriver] })
export class BuilderModule {}
