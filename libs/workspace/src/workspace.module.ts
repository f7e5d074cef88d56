import { Module } from '@nestjs/common';
import { Workspaces } from './workspaces';

/** Workspaces under CONVEYOR_WORKSPACE_ROOT, for drivers that inject them. */
@Module({
  providers: [{ provide: Workspaces, useFactory: () => new Workspaces() }],
  exports: [Workspaces],
})
export class WorkspaceModule {}
