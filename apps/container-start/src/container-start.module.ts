import { Module } from '@nestjs/common';
import { DockerModule } from '@conveyor/docker';
import { WorkspaceModule } from '@conveyor/workspace';
import { ContainerStartDriver } from './container-start.driver';

@Module({ imports: [DockerModule, WorkspaceModule], controllers: [ContainerStartDriver] })
export class ContainerStartModule {}
