import { chmod, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { RUN_ID_PATTERN } from '@conveyor/contracts';

export const DEFAULT_WORKSPACE_ROOT = '/var/lib/conveyor/workspaces';

export class InvalidRunIdError extends Error {}

/** The workspace root from CONVEYOR_WORKSPACE_ROOT (an absolute path), or the default. */
export function workspaceRootFromEnv(env: Record<string, string | undefined> = process.env): string {
  const raw = env.CONVEYOR_WORKSPACE_ROOT?.trim();
  if (!raw) return DEFAULT_WORKSPACE_ROOT;
  if (!isAbsolute(raw)) throw new Error(`CONVEYOR_WORKSPACE_ROOT=${raw}: must be an absolute path`);
  return resolve(raw);
}

/**
 * One folder per run on the build host, mounted into the run's container at /workspace.
 * The folder name is the run id, validated, so no input can name a path outside the root.
 */
export class Workspaces {
  readonly root: string;

  constructor(root: string = workspaceRootFromEnv()) {
    if (!isAbsolute(root)) throw new Error(`workspace root ${root} must be an absolute path`);
    this.root = resolve(root);
  }

  workspaceFor(runId: string): string {
    if (typeof runId !== 'string' || !RUN_ID_PATTERN.test(runId)) {
      throw new InvalidRunIdError(`run id "${String(runId)}" is malformed: no workspace for it`);
    }
    const dir = join(this.root, runId);
    // Belt and braces: the pattern already excludes separators and dots.
    if (!dir.startsWith(this.root + sep)) throw new InvalidRunIdError(`run id "${runId}" names a path outside ${this.root}`);
    return dir;
  }

  /** Creates the root (0755) and the run's folder when missing; returns the folder. */
  async ensure(runId: string): Promise<string> {
    const dir = this.workspaceFor(runId);
    // The umask may narrow the mode; a root we create is 0755 whatever it is.
    if (await mkdir(this.root, { recursive: true, mode: 0o755 })) await chmod(this.root, 0o755);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    return dir;
  }

  /** The run folders under the root (names that are run ids), with when each was last changed. */
  async list(): Promise<Array<{ runId: string; dir: string; modifiedAt: Date }>> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: Array<{ runId: string; dir: string; modifiedAt: Date }> = [];
    for (const name of names.filter((n) => RUN_ID_PATTERN.test(n)).sort()) {
      const dir = join(this.root, name);
      const info = await stat(dir).catch(() => undefined);
      if (info?.isDirectory()) out.push({ runId: name, dir, modifiedAt: info.mtime });
    }
    return out;
  }

  /** Deletes the run's folder and everything in it; a missing folder is fine. */
  async remove(runId: string): Promise<void> {
    await rm(this.workspaceFor(runId), { recursive: true, force: true, maxRetries: 3 });
  }
}
