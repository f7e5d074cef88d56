export * from './workspaces';
export * from './workspace.module';
