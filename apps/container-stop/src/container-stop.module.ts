import { Module } from '@nestjs/common';
import { DockerModule } from '@conveyor/docker';
import { WorkspaceModule } from '@conveyor/workspace';
import { ContainerStopDriver } from './container-stop.driver';

@Module({ imports: [DockerModule, WorkspaceModule], controllers: [ContainerStopDriver] })
export class ContainerStopModule {}
