import type { TriggerEvent, TriggerSource } from '@conveyor/contracts';
import { header, type HookHeaders } from './signatures';

/** A forge's event, reduced to what a run needs. */
export interface HookEvent {
  event: TriggerEvent;
  /** The forge's delivery id (its redeliveries carry the same one). */
  delivery: string;
  /** Clone URL (the pull request's head repository for a pull request). */
  repository: string;
  /** `owner/name` (GitHub, Gitea) or the project's id (GitLab): how the forge's API names the repository. */
  project?: string;
  /** `refs/heads/<branch>`, `refs/tags/<tag>`, `refs/pull/<n>/head`, `refs/merge-requests/<n>/head`. */
  ref: string;
  /** What the trigger's `branches` match: the branch (push), the tag (tag), the target branch (pull request). */
  branch: string;
  commit: string;
  sender?: string;
  message?: string;
}

/** What a delivery is, once its signature is good. */
export type ParsedHook =
  | { kind: 'event'; value: HookEvent }
  /** Answered 200 with the reason: a ping, an event kind Conveyor does not run for, a deleted branch, a closed pull request. */
  | { kind: 'ignored'; reason: string; delivery?: string };

/** A body that is not the forge's shape: answered 400. */
export class HookPayloadError extends Error {}

const ZERO_SHA = /^0+$/;
const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/i;
/** Longest sender/message kept; a commit message can be long, the resource's spec need not be. */
const MAX_TEXT = 1000;

export const DELIVERY_HEADER: Record<TriggerSource, string> = {
  github: 'x-github-delivery',
  gitea: 'x-gitea-delivery',
  gitlab: 'x-gitlab-event-uuid',
  generic: 'x-conveyor-delivery',
};

export const EVENT_HEADER: Record<TriggerSource, string> = {
  github: 'x-github-event',
  gitea: 'x-gitea-event',
  gitlab: 'x-gitlab-event',
  generic: 'x-conveyor-event',
};

/**
 * Reads a delivery of `source` whose signature was checked. Push, tag push and pull/merge
 * request events become a HookEvent; anything else is `ignored` with the reason; a body that is
 * not what the forge documents for its event header is a HookPayloadError.
 */
export function parseHook(source: TriggerSource, headers: HookHeaders, body: unknown): ParsedHook {
  const delivery = header(headers, DELIVERY_HEADER[source])?.trim();
  const eventName = header(headers, EVENT_HEADER[source])?.trim();
  if (source !== 'generic' && !eventName) throw new HookPayloadError(`no ${EVENT_HEADER[source]} header`);
  if (!delivery) throw new HookPayloadError(`no ${DELIVERY_HEADER[source]} header (the delivery id)`);
  if (delivery.length > 200 || /[^\x21-\x7e]/.test(delivery)) throw new HookPayloadError(`${DELIVERY_HEADER[source]} is not a delivery id (printable ASCII, at most 200 characters)`);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HookPayloadError('the body is not a JSON object');
  const b = new Reader(body as Record<string, unknown>);
  switch (source) {
    case 'github':
    case 'gitea':
      return githubLike(source, eventName!.toLowerCase(), delivery, b);
    case 'gitlab':
      return gitlab(eventName!, delivery, b);
    case 'generic':
      return generic(eventName?.toLowerCase(), delivery, b);
  }
}

/** GitHub and Gitea/Forgejo send the same shapes for push and pull_request (Gitea mirrors GitHub's API). */
function githubLike(source: 'github' | 'gitea', name: string, delivery: string, b: Reader): ParsedHook {
  if (name === 'ping') return { kind: 'ignored', reason: 'ping', delivery };
  if (name === 'push') {
    const ref = b.str('ref');
    const after = b.str('after');
    if (ZERO_SHA.test(after) || b.opt('deleted') === true) return { kind: 'ignored', reason: `${ref} was deleted`, delivery };
    const repo = b.obj('repository');
    const head = b.opt('head_commit');
    const message = typeof head === 'object' && head !== null ? (head as Record<string, unknown>).message : undefined;
    return {
      kind: 'event',
      value: refEvent(delivery, ref, sha(after, 'after'), {
        repository: repo.str('clone_url'),
        project: repo.str('full_name'),
        sender: senderOf(b) ?? pusherOf(b),
        message: typeof message === 'string' ? message : undefined,
      }),
    };
  }
  if (name === 'pull_request') {
    const action = b.str('action');
    // Runs for new code: opened, pushed to (GitHub "synchronize", Gitea "synchronized"), reopened.
    if (!['opened', 'synchronize', 'synchronized', 'reopened'].includes(action)) return { kind: 'ignored', reason: `pull request ${action}`, delivery };
    const pr = b.obj('pull_request');
    const number = b.opt('number') ?? pr.opt('number');
    if (typeof number !== 'number' || !Number.isInteger(number)) throw new HookPayloadError('"number" is not the pull request\'s number');
    const head = pr.obj('head');
    const base = pr.obj('base');
    const headRepo = head.obj('repo');
    return {
      kind: 'event',
      value: {
        event: 'pull_request',
        delivery,
        repository: headRepo.str('clone_url'),
        project: b.obj('repository').str('full_name'),
        ref: `refs/pull/${number}/head`,
        branch: base.str('ref'),
        commit: sha(head.str('sha'), 'pull_request.head.sha'),
        sender: senderOf(b),
        message: clip(pr.opt('title')),
      },
    };
  }
  return { kind: 'ignored', reason: `${source} event "${name}" does not start runs (push, tag pushes and pull_request do)`, delivery };
}

function gitlab(name: string, delivery: string, b: Reader): ParsedHook {
  const kind = b.opt('object_kind');
  if (name === 'Push Hook' || name === 'Tag Push Hook') {
    if (kind !== 'push' && kind !== 'tag_push') throw new HookPayloadError(`object_kind ${JSON.stringify(kind)} is not a push for a "${name}"`);
    const ref = b.str('ref');
    const after = b.str('after');
    // A deleted branch or tag: after is zeros and checkout_sha is null.
    if (ZERO_SHA.test(after)) return { kind: 'ignored', reason: `${ref} was deleted`, delivery };
    const project = b.obj('project');
    const checkout = b.opt('checkout_sha');
    const commits = b.opt('commits');
    const commit = sha(typeof checkout === 'string' ? checkout : after, 'checkout_sha');
    const last = Array.isArray(commits) ? (commits as Array<Record<string, unknown>>).find((c) => c?.id === commit) : undefined;
    return {
      kind: 'event',
      value: refEvent(delivery, ref, commit, {
        repository: project.str('git_http_url'),
        project: String(project.num('id')),
        sender: clip(b.opt('user_username')) ?? clip(b.opt('user_name')),
        message: clip(last?.message) ?? clip(b.opt('message')),
      }),
    };
  }
  if (name === 'Merge Request Hook') {
    if (kind !== 'merge_request') throw new HookPayloadError(`object_kind ${JSON.stringify(kind)} is not a merge_request for a "${name}"`);
    const attrs = b.obj('object_attributes');
    const action = attrs.opt('action');
    // New code: opened, reopened, or updated with new commits (an update that only edits the title has no oldrev).
    const newCode = action === 'open' || action === 'reopen' || (action === 'update' && typeof attrs.opt('oldrev') === 'string');
    if (!newCode) return { kind: 'ignored', reason: `merge request ${typeof action === 'string' ? action : 'event'} without new commits`, delivery };
    const iid = attrs.num('iid');
    const user = b.opt('user');
    return {
      kind: 'event',
      value: {
        event: 'pull_request',
        delivery,
        repository: attrs.obj('source').str('git_http_url'),
        project: String(b.obj('project').num('id')),
        ref: `refs/merge-requests/${iid}/head`,
        branch: attrs.str('target_branch'),
        commit: sha(attrs.obj('last_commit').str('id'), 'object_attributes.last_commit.id'),
        sender: typeof user === 'object' && user !== null ? clip((user as Record<string, unknown>).username) : undefined,
        message: clip(attrs.opt('title')),
      },
    };
  }
  return { kind: 'ignored', reason: `gitlab event "${name}" does not start runs (Push Hook, Tag Push Hook and Merge Request Hook do)`, delivery };
}

/** The generic endpoint (and deploy/git/post-receive): `{ref, commit, repository?, sender?, message?}`; its event is read from the ref. */
function generic(name: string | undefined, delivery: string, b: Reader): ParsedHook {
  if (name === 'ping') return { kind: 'ignored', reason: 'ping', delivery };
  const ref = b.str('ref');
  const commit = b.str('commit');
  if (ZERO_SHA.test(commit)) return { kind: 'ignored', reason: `${ref} was deleted`, delivery };
  const repository = b.opt('repository');
  if (repository !== undefined && typeof repository !== 'string') throw new HookPayloadError('"repository" is not a string');
  if (name !== undefined && name !== '' && name !== 'push' && name !== 'tag') throw new HookPayloadError(`X-Conveyor-Event "${name.slice(0, 50)}" is not push, tag or ping`);
  const event = refEvent(delivery, ref, sha(commit, 'commit'), { repository: repository ?? '', sender: clip(b.opt('sender')), message: clip(b.opt('message')) });
  if (name && name !== event.event) throw new HookPayloadError(`X-Conveyor-Event "${name}" does not fit ref ${ref} (a ${event.event})`);
  return { kind: 'event', value: event };
}

function refEvent(delivery: string, ref: string, commit: string, rest: { repository: string; project?: string; sender?: string; message?: string }): HookEvent {
  const tag = /^refs\/tags\/(.+)$/.exec(ref);
  const branch = /^refs\/heads\/(.+)$/.exec(ref);
  if (!tag && !branch) throw new HookPayloadError(`ref ${JSON.stringify(ref.slice(0, 200))} is neither refs/heads/<branch> nor refs/tags/<tag>`);
  return {
    event: tag ? 'tag' : 'push',
    delivery,
    ref,
    branch: (tag ?? branch)![1],
    commit,
    repository: rest.repository,
    ...(rest.project ? { project: rest.project } : {}),
    ...(rest.sender ? { sender: rest.sender } : {}),
    ...(rest.message ? { message: rest.message } : {}),
  };
}

function sha(value: string, where: string): string {
  if (!SHA.test(value)) throw new HookPayloadError(`${where} is not a commit id (40 or 64 hex digits)`);
  return value.toLowerCase();
}

function senderOf(b: Reader): string | undefined {
  const s = b.opt('sender');
  if (typeof s !== 'object' || s === null) return undefined;
  const o = s as Record<string, unknown>;
  return clip(o.login) ?? clip(o.username);
}

function pusherOf(b: Reader): string | undefined {
  const p = b.opt('pusher');
  return typeof p === 'object' && p !== null ? clip((p as Record<string, unknown>).name) ?? clip((p as Record<string, unknown>).login) : undefined;
}

function clip(v: unknown): string | undefined {
  if (typeof v !== 'string' || !v) return undefined;
  return v.length > MAX_TEXT ? `${v.slice(0, MAX_TEXT)}…` : v;
}

/** Typed reads of a payload object; a missing or mistyped field is a HookPayloadError naming its path. */
class Reader {
  constructor(
    private readonly o: Record<string, unknown>,
    private readonly path = '',
  ) {}

  opt(key: string): unknown {
    return this.o[key];
  }

  str(key: string): string {
    const v = this.o[key];
    if (typeof v !== 'string' || !v) throw new HookPayloadError(`"${this.path}${key}" is missing or not a string`);
    return v;
  }

  num(key: string): number {
    const v = this.o[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new HookPayloadError(`"${this.path}${key}" is missing or not a number`);
    return v;
  }

  obj(key: string): Reader {
    const v = this.o[key];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HookPayloadError(`"${this.path}${key}" is missing or not an object`);
    return new Reader(v as Record<string, unknown>, `${this.path}${key}.`);
  }
}
