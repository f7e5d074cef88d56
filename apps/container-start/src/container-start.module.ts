import { Module } from '@nestjs/common';
import { DockerModule } from '@conveyor/docker';
import { WorkspaceModule } from '@conveyor/workspace';
import { ContainerStartDriver } from './container-start.driver';
import { JanitorService } from './janitor';

/** The container-start driver, and the janitor of the machine's containers and workspaces. */
@Module({ imports: [DockerModule, WorkspaceModule], controllers: [ContainerStartDriver], providers: [JanitorService] })
export class ContainerStartModule {}
