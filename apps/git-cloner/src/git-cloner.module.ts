import { Module } from '@nestjs/common';
import { WorkspaceModule } from '@conveyor/workspace';
import { GitClonerDriver } from './git-cloner.driver';

@Module({ imports: [WorkspaceModule], controllers: [GitClonerDriver] })
export class GitClonerModule {}
