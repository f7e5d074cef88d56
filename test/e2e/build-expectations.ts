import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Run } from '@conveyor/contracts';
import { stepOf, type BuildSystem } from '../support/build-system';

/**
 * Assertions the build suites share. Here, not in test/support: that folder is also built
 * for the bench, which has no jest.
 */

/** What container-stop promises: the run's container and workspace are gone. */
export async function expectCleanedUp(build: BuildSystem, run: Run): Promise<void> {
  expect(stepOf(run, 'stop')).toMatchObject({ status: 'succeeded' });
  await expect(build.docker.getContainer(build.fleet.containerName(run.id)).inspect()).rejects.toMatchObject({ statusCode: 404 });
  expect(existsSync(join(build.fleet.workspaceRoot, run.id))).toBe(false);
}
