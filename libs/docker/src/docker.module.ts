import { Module } from '@nestjs/common';
import Docker from 'dockerode';
import { BUILD_CONTAINER_OPTIONS, BuildContainers, DOCKER } from './build-containers';
import { buildContainerOptionsFromEnv } from './options';

/** BuildContainers on the Docker engine that DOCKER_HOST (or the local socket) points at. */
@Module({
  providers: [
    { provide: DOCKER, useFactory: () => new Docker() },
    { provide: BUILD_CONTAINER_OPTIONS, useFactory: () => buildContainerOptionsFromEnv() },
    BuildContainers,
  ],
  exports: [DOCKER, BUILD_CONTAINER_OPTIONS, BuildContainers],
})
export class DockerModule {}
