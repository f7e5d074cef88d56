import { createHash } from 'node:crypto';
import picomatch from 'picomatch';
import { NAME_MAX_LENGTH, isName, type JsonObject, type Trigger } from '@conveyor/contracts';
import type { HookEvent } from './forge-events';

const REF = /\$\{\{\s*([^}]*?)\s*\}\}/g;
/** What a trigger's templates may name. */
const NAME_VARS = ['trigger', 'event', 'branch', 'repository.name'] as const;
const SPEC_VARS = ['trigger', 'event', 'branch', 'repository.name', 'event.repository', 'event.ref', 'event.commit', 'event.sender', 'event.message', 'event.project'] as const;

/** Why a trigger's template is unusable (for a 400), or undefined. */
export function templateProblem(template: string, where: string, allowed: readonly string[] = SPEC_VARS): string | undefined {
  for (const [, expr] of template.matchAll(REF)) {
    if (!allowed.includes(expr)) return `${where}: \${{ ${expr} }} is not one of ${allowed.join(', ')}`;
  }
  return undefined;
}

export function resourceNameProblem(template: string): string | undefined {
  return templateProblem(template, 'resourceName', NAME_VARS);
}

/** Every string in a spec template, with where it is, for checks. */
export function specTemplateProblem(spec: JsonObject): string | undefined {
  let problem: string | undefined;
  walk(spec, (s, path) => {
    problem ??= templateProblem(s, `spec${path}`);
    return s;
  });
  return problem;
}

/** Why a glob list is unusable, or undefined. */
export function branchesProblem(globs: string[]): string | undefined {
  for (const g of globs) {
    if (!g.trim() || g === '!') return 'branches: an empty glob';
    try {
      picomatch.makeRe(g.replace(/^!/, ''));
    } catch (err) {
      return `branches: ${JSON.stringify(g)} is not a glob (${(err as Error).message})`;
    }
  }
  return undefined;
}

/**
 * Why `trigger` does not run for `event` (answered 200 `ignored`), or undefined when it does.
 * `branches` are globs over the branch (the tag for a tag, the target branch for a pull
 * request); a glob starting with "!" excludes what it matches.
 */
export function ignoredBecause(trigger: Pick<Trigger, 'events' | 'branches' | 'repository'>, event: HookEvent): string | undefined {
  if (!trigger.events.includes(event.event)) return `event "${event.event}" is not one of this trigger's events (${trigger.events.join(', ')})`;
  if (trigger.repository && event.repository) {
    const want = normalRepo(trigger.repository);
    if (want !== normalRepo(event.repository) && want !== normalRepo(event.project ?? '')) return `repository ${event.project ?? event.repository} is not this trigger's (${trigger.repository})`;
  }
  const globs = trigger.branches ?? [];
  if (globs.length) {
    const include = globs.filter((g) => !g.startsWith('!'));
    const exclude = globs.filter((g) => g.startsWith('!')).map((g) => g.slice(1));
    const what = event.event === 'tag' ? 'tag' : 'branch';
    if (include.length && !picomatch.isMatch(event.branch, include, { dot: true })) return `${what} "${event.branch}" matches none of ${include.join(', ')}`;
    if (exclude.length && picomatch.isMatch(event.branch, exclude, { dot: true })) return `${what} "${event.branch}" is excluded (!${exclude.join(', !')})`;
  }
  return undefined;
}

/** The URL or `owner/name` of a repository, compared without case, scheme credentials, `.git` or a trailing slash. */
function normalRepo(r: string): string {
  return r.trim().toLowerCase().replace(/^([a-z+]+:\/\/)[^@/]*@/, '$1').replace(/\/+$/, '').replace(/\.git$/, '');
}

function vars(trigger: Pick<Trigger, 'name'>, event: HookEvent): Record<string, string> {
  const repoName = (event.project ?? event.repository).replace(/\/+$/, '').replace(/\.git$/, '').split(/[/:]/).pop() ?? '';
  return {
    trigger: trigger.name,
    event: event.event,
    branch: event.branch,
    'repository.name': repoName,
    'event.repository': event.repository,
    'event.ref': event.ref,
    'event.commit': event.commit,
    'event.sender': event.sender ?? '',
    'event.message': event.message ?? '',
    'event.project': event.project ?? '',
  };
}

/**
 * The resource name the event's version goes to: the template filled in and made a Conveyor
 * name (lower case, other characters "-"); a name over 63 characters keeps its start and a
 * hash of the whole, so two long branch names stay apart.
 */
export function resourceNameFor(trigger: Pick<Trigger, 'name' | 'resourceName'>, event: HookEvent): string {
  const v = vars(trigger, event);
  const filled = trigger.resourceName.replace(REF, (_, expr: string) => v[expr] ?? '');
  let name = filled.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '');
  if (name.length > NAME_MAX_LENGTH) {
    const hash = createHash('sha256').update(filled).digest('hex').slice(0, 8);
    name = `${name.slice(0, NAME_MAX_LENGTH - 9).replace(/-+$/, '')}-${hash}`;
  }
  return isName(name) ? name : trigger.name;
}

/**
 * The version's spec: what the event gives (`repository`, `ref`, `commit`, `sender`, `message`)
 * under the trigger's `spec` with its templates filled in, so a key the trigger sets itself
 * (an internal mirror as `repository`, say) wins. `repository` falls back to the trigger's.
 */
export function specFor(trigger: Pick<Trigger, 'name' | 'spec' | 'repository'>, event: HookEvent): JsonObject {
  const v = vars(trigger, event);
  const filled = walk(trigger.spec, (s) => s.replace(REF, (_, expr: string) => v[expr] ?? '')) as JsonObject;
  // A trigger's repository that is a clone URL (not `owner/name`) stands in for a generic event's missing one.
  const repository = event.repository || (trigger.repository && /^([a-z][a-z0-9+.-]*:\/\/|[^@\s/]+@[^:\s]+:|\/)/i.test(trigger.repository) ? trigger.repository : '');
  return {
    ...(repository ? { repository } : {}),
    ref: event.ref,
    commit: event.commit,
    ...(event.sender ? { sender: event.sender } : {}),
    ...(event.message ? { message: event.message } : {}),
    ...filled,
  };
}

function walk(value: unknown, fill: (s: string, path: string) => string, path = ''): unknown {
  if (typeof value === 'string') return fill(value, path);
  if (Array.isArray(value)) return value.map((v, i) => walk(v, fill, `${path}[${i}]`));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, fill, `${path}.${k}`)]));
  }
  return value;
}
