import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import picomatch from 'picomatch';

/** One cache of a build step: `paths` kept under `key`, restored from it (or from the newest entry a `restoreKeys` prefix matches). */
export interface CacheRule {
  /** A template: `${{ hashFiles('<glob>', …) }}`, `${{ resource.name }}`, `${{ pipeline }}`. */
  key: string;
  paths: string[];
  restoreKeys: string[];
}

/** A rule, key or path that cannot be used; the message is the step's failure message. */
export class CacheError extends Error {}

const MAX_RULES = 10;
const MAX_KEY = 512;
/** Keys as stored: no control characters, no path separators (a key is an object name and a URL segment). */
const KEY_CHARS = /^[A-Za-z0-9._+=,@-]+$/;
const REF = /\$\{\{\s*([^}]*?)\s*\}\}/g;
const HASH_FILES = /^hashFiles\(\s*((?:'[^']*'\s*,?\s*)+)\)$/;

/** Reads a step's `cache` (spec over config): a list of `{key, paths, restoreKeys?}`; [] when there is none. */
export function readCacheRules(raw: unknown): CacheRule[] {
  if (raw === undefined || raw === null) return [];
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length > MAX_RULES) throw new CacheError(`"cache" lists more than ${MAX_RULES} caches`);
  return list.map((r, i) => {
    const where = `"cache[${i}]"`;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new CacheError(`${where} must be {key, paths: [paths], restoreKeys?: [prefixes]}`);
    const o = r as Record<string, unknown>;
    if (typeof o.key !== 'string' || !o.key.trim()) throw new CacheError(`${where}.key must be a non-empty string`);
    const problem = templateProblem(o.key);
    if (problem) throw new CacheError(`${where}.key: ${problem}`);
    if (!Array.isArray(o.paths) || !o.paths.length || o.paths.some((p) => typeof p !== 'string' || !p.trim())) throw new CacheError(`${where}.paths must list the paths to keep`);
    for (const p of o.paths as string[]) {
      if (p.startsWith('/') || p.split(/[\\/]/).includes('..') || /[\u0000-\u001f]/.test(p)) throw new CacheError(`${where}.paths: ${JSON.stringify(p)} is not a path inside the workspace`);
    }
    const restoreKeys = o.restoreKeys ?? [];
    if (!Array.isArray(restoreKeys) || restoreKeys.some((k) => typeof k !== 'string' || !k || !KEY_CHARS.test(k))) throw new CacheError(`${where}.restoreKeys must be key prefixes (letters, digits and . _ + = , @ -)`);
    return { key: o.key, paths: (o.paths as string[]).map((p) => p.replace(/^\.\//, '')), restoreKeys: restoreKeys as string[] };
  });
}

function templateProblem(key: string): string | undefined {
  for (const [, expr] of key.matchAll(REF)) {
    if (expr === 'pipeline' || expr === 'resource.name' || expr === 'resource.type') continue;
    const m = HASH_FILES.exec(expr);
    if (!m) return `\${{ ${expr} }} is not one of hashFiles('<glob>', …), resource.name, resource.type, pipeline`;
    for (const [, glob] of m[1].matchAll(/'([^']*)'/g)) {
      if (!glob || glob.startsWith('/') || glob.split('/').includes('..')) return `hashFiles('${glob}'): globs are relative to the workspace, without ".."`;
    }
  }
  const literal = key.replace(REF, 'x');
  if (!KEY_CHARS.test(literal)) return 'a key is letters, digits and . _ + = , @ - (besides its ${{ }} parts)';
  return undefined;
}

/**
 * The key with its templates filled in: `hashFiles` is the SHA-256 of the matched files' own
 * SHA-256s in path order (as GitHub Actions computes it; empty when nothing matches).
 */
export async function renderCacheKey(template: string, vars: { workspace: string; pipeline: string; resource: { name: string; type: string } }): Promise<string> {
  const parts: string[] = [];
  let last = 0;
  for (const m of template.matchAll(REF)) {
    parts.push(template.slice(last, m.index));
    last = m.index! + m[0].length;
    const expr = m[1];
    if (expr === 'pipeline') parts.push(vars.pipeline);
    else if (expr === 'resource.name') parts.push(vars.resource.name);
    else if (expr === 'resource.type') parts.push(vars.resource.type);
    else parts.push(await hashFiles(vars.workspace, [...HASH_FILES.exec(expr)![1].matchAll(/'([^']*)'/g)].map((g) => g[1])));
  }
  parts.push(template.slice(last));
  const key = parts.join('');
  if (key.length > MAX_KEY) throw new CacheError(`cache key is ${key.length} characters; at most ${MAX_KEY}`);
  if (!KEY_CHARS.test(key)) throw new CacheError(`cache key ${JSON.stringify(key.slice(0, 100))} has characters a key may not (a resource name or pipeline with them?)`);
  return key;
}

/** SHA-256 over the SHA-256s of the workspace's files matching `globs` (never .git, never through symlinks), in path order; '' for none. */
export async function hashFiles(root: string, globs: string[]): Promise<string> {
  const match = picomatch(globs, { dot: true });
  const files: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const name = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (name !== '.git' && e.name !== 'node_modules') await walk(join(dir, e.name), name);
      } else if (e.isFile() && match(name)) files.push(name);
    }
  };
  await walk(root, '');
  if (!files.length) return '';
  const all = createHash('sha256');
  for (const f of files) {
    const info = await lstat(join(root, f));
    if (!info.isFile()) continue;
    const h = createHash('sha256');
    for await (const chunk of createReadStream(join(root, f))) h.update(chunk as Buffer);
    all.update(h.digest());
  }
  return all.digest('hex');
}
