import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Trigger, TriggerSource } from '@conveyor/contracts';
import { HookPayloadError, parseHook, type HookEvent } from './forge-events';
import { signBody, signatureProblem } from './signatures';
import { branchesProblem, ignoredBecause, resourceNameFor, resourceNameProblem, specFor, specTemplateProblem } from './trigger-match';

const fixture = (name: string): Record<string, unknown> => JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', `${name}.json`), 'utf8'));
const hdrs = (source: TriggerSource, event: string | undefined, delivery = 'd-1'): Record<string, string> => {
  const names = { github: ['x-github-event', 'x-github-delivery'], gitea: ['x-gitea-event', 'x-gitea-delivery'], gitlab: ['x-gitlab-event', 'x-gitlab-event-uuid'], generic: ['x-conveyor-event', 'x-conveyor-delivery'] }[source];
  return { ...(event ? { [names[0]]: event } : {}), [names[1]]: delivery };
};
const event = (source: TriggerSource, name: string | undefined, body: unknown): HookEvent => {
  const parsed = parseHook(source, hdrs(source, name), body);
  if (parsed.kind !== 'event') throw new Error(`ignored: ${parsed.reason}`);
  return parsed.value;
};

describe('signatures', () => {
  const body = Buffer.from('{"ref":"refs/heads/main"}');
  it('accepts each forge\'s own signature over the raw bytes, and refuses any other', () => {
    const hex = signBody('s3cret', body).slice('sha256='.length);
    expect(signatureProblem('github', { 'x-hub-signature-256': `sha256=${hex}` }, body, 's3cret')).toBeUndefined();
    expect(signatureProblem('generic', { 'x-conveyor-signature-256': `sha256=${hex.toUpperCase()}` }, body, 's3cret')).toBeUndefined();
    expect(signatureProblem('gitea', { 'x-gitea-signature': hex }, body, 's3cret')).toBeUndefined();
    expect(signatureProblem('gitlab', { 'x-gitlab-token': 's3cret' }, body, 's3cret')).toBeUndefined();

    expect(signatureProblem('github', {}, body, 's3cret')).toBe('no x-hub-signature-256 header');
    expect(signatureProblem('github', { 'x-hub-signature-256': hex }, body, 's3cret')).toMatch(/not the HMAC/);
    expect(signatureProblem('github', { 'x-hub-signature-256': `sha256=${hex}` }, Buffer.from(`${body} `), 's3cret')).toMatch(/not the HMAC/);
    expect(signatureProblem('gitea', { 'x-gitea-signature': hex }, body, 'other')).toMatch(/not the HMAC/);
    expect(signatureProblem('gitlab', { 'x-gitlab-token': 's3cre' }, body, 's3cret')).toMatch(/does not match/);
    expect(signatureProblem('gitlab', { 'x-gitlab-token': '' }, body, 's3cret')).toBe('no x-gitlab-token header');
  });
});

describe('forge events (documented payload shapes)', () => {
  it('GitHub push, tag, pull request, ping and a deleted branch', () => {
    expect(event('github', 'push', fixture('github-push'))).toEqual({
      event: 'push',
      delivery: 'd-1',
      repository: 'https://github.com/octo-org/hello-world.git',
      project: 'octo-org/hello-world',
      ref: 'refs/heads/main',
      branch: 'main',
      commit: '9f5c1c0ad6b0a3a0b1e1d8f2a9c3e4b5d6f7a8b9',
      sender: 'mona',
      message: 'Fix the build on arm64\n\nThe toolchain path was wrong.',
    });
    expect(event('github', 'push', fixture('github-tag'))).toMatchObject({ event: 'tag', ref: 'refs/tags/v1.2.0', branch: 'v1.2.0' });
    expect(event('github', 'pull_request', fixture('github-pull_request'))).toMatchObject({
      event: 'pull_request',
      repository: 'https://github.com/hubot/hello-world.git',
      project: 'octo-org/hello-world',
      ref: 'refs/pull/42/head',
      branch: 'main',
      commit: '2a4f8c7e1b3d5f6a7b8c9d0e1f2a3b4c5d6e7f80',
      sender: 'hubot',
      message: 'Add a cache for the toolchain',
    });
    expect(parseHook('github', hdrs('github', 'ping'), fixture('github-ping'))).toEqual({ kind: 'ignored', reason: 'ping', delivery: 'd-1' });
    expect(parseHook('github', hdrs('github', 'push'), fixture('github-push-deleted'))).toMatchObject({ kind: 'ignored', reason: 'refs/heads/old-feature was deleted' });
    expect(parseHook('github', hdrs('github', 'pull_request'), { ...fixture('github-pull_request'), action: 'closed' })).toMatchObject({ kind: 'ignored', reason: 'pull request closed' });
    expect(parseHook('github', hdrs('github', 'issues'), { action: 'opened' })).toMatchObject({ kind: 'ignored', reason: expect.stringMatching(/"issues" does not start runs/) });
  });

  it('Gitea/Forgejo push and pull request', () => {
    expect(event('gitea', 'push', fixture('gitea-push'))).toMatchObject({ event: 'push', repository: 'https://gitea.example.com/dev/hello-world.git', project: 'dev/hello-world', branch: 'main', sender: 'dev' });
    expect(event('gitea', 'pull_request', fixture('gitea-pull_request'))).toMatchObject({ event: 'pull_request', ref: 'refs/pull/3/head', branch: 'main', repository: 'https://gitea.example.com/contrib/hello-world.git', sender: 'contrib' });
  });

  it('GitLab push, tag push and merge request (new commits only)', () => {
    expect(event('gitlab', 'Push Hook', fixture('gitlab-push'))).toMatchObject({ event: 'push', project: '15', repository: 'https://gitlab.example.com/group/hello-world.git', sender: 'jsmith', message: 'Fix the build on arm64\n' });
    expect(event('gitlab', 'Tag Push Hook', fixture('gitlab-tag_push'))).toMatchObject({ event: 'tag', branch: 'v1.0.0', message: 'Release 1.0' });
    expect(event('gitlab', 'Merge Request Hook', fixture('gitlab-merge_request'))).toMatchObject({
      event: 'pull_request',
      ref: 'refs/merge-requests/7/head',
      branch: 'main',
      repository: 'https://gitlab.example.com/fork/hello-world.git',
      commit: '2a4f8c7e1b3d5f6a7b8c9d0e1f2a3b4c5d6e7f80',
      sender: 'root',
    });
    const mr = fixture('gitlab-merge_request');
    const { oldrev: _o, ...titleOnly } = mr.object_attributes as Record<string, unknown>;
    expect(parseHook('gitlab', hdrs('gitlab', 'Merge Request Hook'), { ...mr, object_attributes: titleOnly })).toMatchObject({ kind: 'ignored' });
  });

  it('generic: the event follows the ref', () => {
    const c = 'a'.repeat(40);
    expect(event('generic', undefined, { ref: 'refs/heads/dev', commit: c, repository: 'file:///srv/app.git' })).toMatchObject({ event: 'push', branch: 'dev', commit: c });
    expect(event('generic', 'tag', { ref: 'refs/tags/v2', commit: c })).toMatchObject({ event: 'tag', repository: '' });
    expect(() => parseHook('generic', hdrs('generic', 'tag'), { ref: 'refs/heads/dev', commit: c })).toThrow(/does not fit/);
    expect(parseHook('generic', hdrs('generic', 'ping'), {})).toMatchObject({ kind: 'ignored', reason: 'ping' });
  });

  it('a body that is not the forge\'s shape is a HookPayloadError naming what is wrong', () => {
    const bad: Array<[TriggerSource, string | undefined, unknown, RegExp]> = [
      ['github', 'push', [], /not a JSON object/],
      ['github', 'push', { ref: 'refs/heads/main' }, /"after" is missing/],
      ['github', 'push', { ...fixture('github-push'), after: 'zzz' }, /not a commit id/],
      ['github', 'push', { ...fixture('github-push'), repository: 'x' }, /"repository" is missing or not an object/],
      ['github', 'push', { ...fixture('github-push'), ref: 'main' }, /neither refs\/heads/],
      ['github', undefined, fixture('github-push'), /no x-github-event header/],
      ['gitlab', 'Push Hook', { ...fixture('gitlab-push'), object_kind: 'note' }, /not a push/],
      ['gitlab', 'Merge Request Hook', { ...fixture('gitlab-merge_request'), object_attributes: { action: 'open', iid: 'x' } }, /"object_attributes.iid"/],
      ['generic', undefined, { ref: 'refs/heads/x' }, /"commit" is missing/],
      ['generic', 'deploy', { ref: 'refs/heads/x', commit: 'a'.repeat(40) }, /not push, tag or ping/],
    ];
    for (const [source, name, body, why] of bad) expect(() => parseHook(source, hdrs(source, name), body)).toThrow(why);
    expect(() => parseHook('github', { 'x-github-event': 'push' }, fixture('github-push'))).toThrow(/no x-github-delivery/);
    expect(() => parseHook('github', { 'x-github-event': 'push', 'x-github-delivery': 'a b' }, fixture('github-push'))).toThrow(HookPayloadError);
  });
});

describe('matching and the version a trigger makes', () => {
  const trigger: Trigger = {
    name: 'hello',
    source: 'github',
    secret: 'hook',
    events: ['push', 'tag'],
    branches: ['main', 'release/*', '!release/old'],
    resource: 'app',
    pipeline: 'build',
    resourceName: 'hello-${{ branch }}',
    spec: { env: [{ name: 'SHA', value: '${{ event.commit }}' }], image: 'conveyor/build:latest' },
    createdAt: '',
    updatedAt: '',
  };
  const push = event('github', 'push', fixture('github-push'));

  it('events, branch globs (with "!" exclusions) and the repository', () => {
    expect(ignoredBecause(trigger, push)).toBeUndefined();
    expect(ignoredBecause(trigger, { ...push, branch: 'release/2.0' })).toBeUndefined();
    expect(ignoredBecause(trigger, { ...push, branch: 'release/old' })).toMatch(/excluded/);
    expect(ignoredBecause(trigger, { ...push, branch: 'feature/x' })).toBe('branch "feature/x" matches none of main, release/*');
    expect(ignoredBecause(trigger, { ...push, event: 'pull_request' })).toMatch(/not one of this trigger's events/);
    expect(ignoredBecause({ ...trigger, repository: 'Octo-Org/Hello-World' }, push)).toBeUndefined();
    expect(ignoredBecause({ ...trigger, repository: 'https://github.com/octo-org/hello-world' }, push)).toBeUndefined();
    expect(ignoredBecause({ ...trigger, repository: 'octo-org/other' }, push)).toMatch(/is not this trigger's/);
  });

  it('fills the name and spec templates; the event gives repository, ref, commit, sender and message', () => {
    expect(resourceNameFor(trigger, { ...push, branch: 'Feature/Ünïcode_X' })).toBe('hello-feature-n-code-x');
    const long = resourceNameFor(trigger, { ...push, branch: 'x'.repeat(100) });
    expect(long).toHaveLength(63);
    expect(long).not.toBe(resourceNameFor(trigger, { ...push, branch: `${'x'.repeat(99)}y` }));
    expect(specFor(trigger, push)).toEqual({
      repository: 'https://github.com/octo-org/hello-world.git',
      ref: 'refs/heads/main',
      commit: push.commit,
      sender: 'mona',
      message: push.message,
      env: [{ name: 'SHA', value: push.commit }],
      image: 'conveyor/build:latest',
    });
    // A key the trigger sets wins; a generic event without a repository takes the trigger's clone URL.
    expect(specFor({ ...trigger, spec: { repository: 'file:///mirror.git' } }, push).repository).toBe('file:///mirror.git');
    expect(specFor({ ...trigger, repository: 'file:///srv/app.git' }, { ...push, repository: '' }).repository).toBe('file:///srv/app.git');
    expect(specFor({ ...trigger, repository: 'octo/app' }, { ...push, repository: '' }).repository).toBeUndefined();
  });

  it('refuses templates and globs it cannot use', () => {
    expect(resourceNameProblem('x-${{ event.commit }}')).toMatch(/is not one of trigger, event, branch, repository.name/);
    expect(specTemplateProblem({ a: [{ b: '${{ secrets.x }}' }] })).toMatch(/^spec\.a\[0\]\.b:/);
    expect(specTemplateProblem({ a: '${{ event.ref }}' })).toBeUndefined();
    expect(branchesProblem(['main', ''])).toMatch(/empty glob/);
  });
});
