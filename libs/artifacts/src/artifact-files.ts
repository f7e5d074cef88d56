import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { join, posix, sep } from 'node:path';
import picomatch from 'picomatch';

/** What a step keeps: globs relative to the workspace (the repository root), when, and whether matching nothing is fine. */
export interface ArtifactRule {
  /** Globs of files to keep (none: the step only fetches). */
  paths: string[];
  /** Artifacts of earlier steps of the run to fetch into the workspace before the commands. */
  needs: string[];
  /** `success` (default): after the commands succeeded; `always`: also after they failed. */
  when: 'success' | 'always';
  optional: boolean;
}

export interface ArtifactLimits {
  /** Largest file. */
  maxFileBytes: number;
  /** Largest sum of one step's files. */
  maxStepBytes: number;
  maxFiles: number;
}

/** A file to upload: its artifact name (a relative POSIX path) and where it is. */
export interface ArtifactFile {
  name: string;
  path: string;
  size: number;
  /** `path` is a symlink's target inside the workspace (so it is opened as it is, not refused as a link). */
  followed?: boolean;
}

/** A rule or a match that cannot be kept; the message is the step's failure message. */
export class ArtifactError extends Error {}

const MAX_GLOBS = 50;
/** Entries a walk of the workspace reads at most (a node_modules can be large; a workspace with more is refused, not half-read). */
const MAX_WALKED = 200_000;
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Reads a step's `artifacts` (spec over config): a list of globs, or `{paths, when?, optional?}`;
 * undefined when there is none. Globs are relative, without `..`, and match files only.
 */
export function readArtifactRule(raw: unknown): ArtifactRule | undefined {
  if (raw === undefined || raw === null) return undefined;
  const o: Record<string, unknown> = Array.isArray(raw) ? { paths: raw } : typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
  const shape = '"artifacts" must be a list of globs or {paths?: [globs], when?: success|always, optional?: true|false, needs?: [names]}';
  if (typeof raw !== 'object' || (o.paths === undefined && o.needs === undefined)) throw new ArtifactError(shape);
  const rawPaths = o.paths ?? [];
  const rawNeeds = o.needs ?? [];
  if (!Array.isArray(rawPaths) || !Array.isArray(rawNeeds)) throw new ArtifactError(shape);
  if (rawPaths.length > MAX_GLOBS) throw new ArtifactError(`"artifacts.paths" lists more than ${MAX_GLOBS} globs`);
  if (!rawPaths.length && !rawNeeds.length) throw new ArtifactError('"artifacts" names no paths to keep and no artifacts to fetch');
  const needs = rawNeeds.map((n, i) => {
    if (typeof n !== 'string' || !n.trim()) throw new ArtifactError(`"artifacts.needs[${i}]" must be an artifact's name`);
    const problem = globProblem(n);
    if (problem) throw new ArtifactError(`artifact name ${JSON.stringify(n)} is refused: ${problem}`);
    return n.replace(/^\.\//, '');
  });
  const paths = rawPaths.map((p, i) => {
    if (typeof p !== 'string' || !p.trim()) throw new ArtifactError(`"artifacts.paths[${i}]" must be a non-empty glob`);
    const problem = globProblem(p);
    if (problem) throw new ArtifactError(`artifact glob ${JSON.stringify(p)} is refused: ${problem}`);
    return p.replace(/^\.\//, '');
  });
  if (o.when !== undefined && o.when !== 'success' && o.when !== 'always') throw new ArtifactError('"artifacts.when" must be "success" or "always"');
  if (o.optional !== undefined && typeof o.optional !== 'boolean') throw new ArtifactError('"artifacts.optional" must be true or false');
  return { paths, needs, when: (o.when as 'success' | 'always' | undefined) ?? 'success', optional: o.optional === true };
}

function globProblem(glob: string): string | undefined {
  if (CONTROL.test(glob)) return 'it contains control characters';
  if (glob.startsWith('/') || /^[A-Za-z]:[\\/]/.test(glob)) return 'it is an absolute path; give a path relative to the workspace';
  if (glob.split(/[\\/]/).includes('..')) return 'it leaves the workspace ("..")';
  if (glob.startsWith('!')) return 'negated globs are not supported';
  return undefined;
}

/**
 * The workspace's files the rule matches, checked before anything is uploaded: no file is read
 * outside `root` (a symlink is followed only when its target is inside the workspace), names have
 * no control characters, sizes are within the limits (by `stat`, so a sparse 2 GiB file is refused
 * without reading it). `.git` is never walked. Throws an ArtifactError naming the first problem.
 */
export async function collectArtifacts(root: string, rule: ArtifactRule, limits: ArtifactLimits): Promise<ArtifactFile[]> {
  const realRoot = await realpath(root);
  const matchers = rule.paths.map((g) => picomatch(g, { dot: true }));
  const found = new Map<string, ArtifactFile>();
  const unmatched = new Set(rule.paths);
  let walked = 0;
  let total = 0;

  const visit = async (dir: string, rel: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const entry of entries) {
      if (++walked > MAX_WALKED) throw new ArtifactError(`the workspace has more than ${MAX_WALKED} entries; artifacts are not collected from it`);
      const name = rel ? `${rel}/${entry.name}` : entry.name;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (name === '.git') continue;
        await visit(path, name);
        continue;
      }
      const hits = rule.paths.filter((_, i) => matchers[i](name));
      if (!hits.length) continue;
      hits.forEach((g) => unmatched.delete(g));
      if (CONTROL.test(name)) throw new ArtifactError(`artifact ${JSON.stringify(name)} is refused: its name contains control characters`);
      let size: number;
      if (entry.isSymbolicLink()) {
        const target = await realpath(path).catch(() => undefined);
        if (!target || !(target + sep).startsWith(realRoot + sep) || target === realRoot) {
          throw new ArtifactError(`artifact ${JSON.stringify(name)} is refused: it is a symlink to ${target ? 'a path outside the workspace' : 'nothing'}`);
        }
        const info = await stat(target);
        if (!info.isFile()) continue;
        size = info.size;
        found.set(name, { name, path: target, size, followed: true });
      } else if (entry.isFile()) {
        size = (await lstat(path)).size;
      } else {
        continue; // sockets, fifos, devices
      }
      if (size > limits.maxFileBytes) throw new ArtifactError(`artifact ${JSON.stringify(name)} is ${formatBytes(size)}, over the limit of ${formatBytes(limits.maxFileBytes)} a file (CONVEYOR_ARTIFACT_MAX_BYTES)`);
      total += size;
      if (total > limits.maxStepBytes) throw new ArtifactError(`the step's artifacts add up to more than ${formatBytes(limits.maxStepBytes)} (CONVEYOR_ARTIFACTS_MAX_STEP_BYTES)`);
      if (!found.has(name)) found.set(name, { name, path, size });
      if (found.size > limits.maxFiles) throw new ArtifactError(`the step's artifact globs match more than ${limits.maxFiles} files (CONVEYOR_ARTIFACTS_MAX_FILES)`);
    }
  };
  await visit(realRoot, '');
  if (unmatched.size && !rule.optional) {
    throw new ArtifactError(`artifact glob${unmatched.size > 1 ? 's' : ''} ${[...unmatched].map((g) => JSON.stringify(g)).join(', ')} matched no file (mark the artifacts optional: true to allow that)`);
  }
  return [...found.values()];
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 10 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

/** A name as stored: POSIX separators, never absolute. */
export function artifactName(rel: string): string {
  return posix.normalize(rel.split(sep).join('/')).replace(/^\/+/, '');
}
