import { Module } from '@nestjs/common';
import { DockerModule } from '@conveyor/docker';
import { BuilderDriver } from './builder.driver';

@Module({ imports: [DockerModule], controllers: [BuilderDriver] })
export class BuilderModule {}
