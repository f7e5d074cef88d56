import { spawn } from 'node:child_process';
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { newRunId, type Resource, type Run } from '@conveyor/contracts';
import { Api } from '../support/api';
import { BuildSystem, stepOf } from '../support/build-system';
import { buildOutput, tutorialPipeline } from '../support/builtin-drivers';
import { git } from '../support/git-repo';
import { waitFor } from '../support/processes';

jest.setTimeout(180_000);

const ROOT = join(__dirname, '..', '..');
const ADMIN = `admin-${randomBytes(16).toString('hex')}`;
const WRITER = `write-${randomBytes(16).toString('hex')}`;
const SECRET_KEY = randomBytes(32).toString('base64');
const HOOK_SECRET = `hook-${randomBytes(12).toString('hex')}`;

const fixture = (name: string): any => JSON.parse(readFileSync(join(ROOT, 'libs', 'triggers', 'fixtures', `${name}.json`), 'utf8'));
const hmac = (body: string, secret = HOOK_SECRET) => createHmac('sha256', secret).update(body).digest('hex');

/**
 * Webhook triggers end to end: the forges' documented payloads (push, tag, pull/merge request),
 * signed with the test's secret and pointed at a real repository, start runs that the built-in
 * drivers build in Docker at the pushed commit; a real `git push` through deploy/git/post-receive
 * does the same. Unsigned or badly signed bodies start nothing; redeliveries start one run.
 */
describe('webhook triggers (built-in drivers, real git, Docker)', () => {
  let build: BuildSystem;
  let open: Api;
  const post = (trigger: string, body: string, headers: Record<string, string>) =>
    open.request<any>('POST', `/hooks/${trigger}`, body, { 'content-type': 'application/json', ...headers });
  const github = (trigger: string, event: string, payload: unknown, delivery = randomUUID(), secret = HOOK_SECRET) => {
    const body = JSON.stringify(payload);
    return post(trigger, body, { 'x-github-event': event, 'x-github-delivery': delivery, 'x-hub-signature-256': `sha256=${hmac(body, secret)}` });
  };
  const versionOf = (name: string, version: number) => build.sys.api.ok<Resource>('GET', `/resources/thing/${name}/${version}`);
  const runsNow = async () => (await build.sys.api.ok<Run[]>('GET', '/runs?limit=500')).length;

  beforeAll(async () => {
    build = await BuildSystem.start({ CONVEYOR_SECRET_KEY: SECRET_KEY, CONVEYOR_API_TOKENS: `${ADMIN}:admin,${WRITER}:write` });
    open = new Api(build.sys.api.baseUrl);
    await build.sys.api.ok('PUT', '/secrets/hook-secret', { value: HOOK_SECRET });
    await build.sys.api.ok('POST', '/pipelines', tutorialPipeline('hook-build', 'thing', { config: { commands: ['echo "built $(cat version.txt)"'] } }));
    await build.sys.api.ok('POST', '/pipelines', { name: 'hook-clone', resource: 'thing', steps: [{ id: 'clone', name: 'Clone', driver: 'git-cloner' }] });
    const trigger = (name: string, source: string, more: object = {}) =>
      build.sys.api.ok('POST', '/triggers', { name, source, secret: 'hook-secret', resource: 'thing', pipeline: 'hook-clone', ...more });
    await trigger('gh', 'github', { pipeline: 'hook-build', events: ['push', 'tag'], branches: ['main', 'v*'], resourceName: 'gh-${{ branch }}' });
    await trigger('gitea', 'gitea', { events: ['pull_request'] });
    await trigger('gitlab', 'gitlab', { events: ['push', 'tag'] });
  });
  afterAll(async () => {
    expect(await build?.stop()).toBe(0);
  });

  it('a signed GitHub push builds the pushed commit (not the branch head); its redelivery answers the same run', async () => {
    const pushed = build.repo.mainCommits[1];
    const payload = fixture('github-push');
    payload.after = pushed;
    payload.head_commit.id = pushed;
    payload.repository.clone_url = build.repo.url;
    const delivery = randomUUID();
    const first = await github('gh', 'push', payload, delivery);
    expect(first.status).toBe(202);
    expect(first.body).toEqual({ runid: expect.any(String), resource: 'gh-main', version: 1 });
    const run = await build.sys.waitForRun(first.body.runid, undefined, 120_000);
    expect(run.status).toBe('succeeded');
    expect(stepOf(run, 'clone').data).toMatchObject({ commit: pushed });
    // main's head is the third commit: the build saw the pushed (second) one.
    expect(await buildOutput(build.sys.api, run.id)).toContain('built main-2');

    const version = await versionOf('gh-main', 1);
    expect(version.spec).toMatchObject({ repository: build.repo.url, ref: 'refs/heads/main', commit: pushed, sender: 'mona' });
    expect(version.trigger).toMatchObject({ trigger: 'gh', source: 'github', event: 'push', delivery, ref: 'refs/heads/main', commit: pushed, project: 'octo-org/hello-world' });
    expect(version.runid).toBe(run.id);

    // GitHub's "Redeliver": same delivery id, same body.
    const again = await github('gh', 'push', payload, delivery);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ runid: run.id, resource: 'gh-main', version: 1, duplicate: true });
    expect((await build.sys.api.ok<Resource>('GET', '/resources/thing/gh-main')).version).toBe(1);
    const shown = await build.sys.api.ok<any>('GET', '/triggers/gh');
    expect(shown).toMatchObject({ hook: '/hooks/gh', last: { outcome: 'started', runid: run.id, delivery } });
  });

  it('refuses what is not signed with the trigger\'s secret, ignores what it does not run for, and starts nothing for either', async () => {
    const before = await runsNow();
    const payload = fixture('github-push');
    payload.repository.clone_url = build.repo.url;
    const body = JSON.stringify(payload);
    const headers = { 'x-github-event': 'push', 'x-github-delivery': randomUUID() };

    expect(await post('gh', body, headers)).toMatchObject({ status: 401, body: { message: 'no x-hub-signature-256 header' } });
    expect((await github('gh', 'push', payload, randomUUID(), 'not-the-secret')).status).toBe(401);
    // Signed, then changed by one byte on the way.
    expect((await post('gh', body.replace('"main"', '"mainx"'), { ...headers, 'x-hub-signature-256': `sha256=${hmac(body)}` })).status).toBe(401);
    // Another trigger's source: its signature header is not there.
    expect((await post('gitea', body, { ...headers, 'x-hub-signature-256': `sha256=${hmac(body)}` })).status).toBe(401);
    expect((await github('nope', 'push', payload)).status).toBe(404);
    expect((await github('Bad.Name', 'push', payload)).status).toBe(404);

    expect(await github('gh', 'ping', fixture('github-ping'))).toMatchObject({ status: 200, body: { ignored: 'ping' } });
    expect(await github('gh', 'push', { ...payload, ref: 'refs/heads/feature' })).toMatchObject({ status: 200, body: { ignored: 'branch "feature" matches none of main, v*' } });
    expect(await github('gh', 'pull_request', fixture('github-pull_request'))).toMatchObject({ status: 200, body: { ignored: expect.stringMatching(/"pull_request" is not one of/) } });
    expect(await github('gh', 'push', fixture('github-push-deleted'))).toMatchObject({ status: 200, body: { ignored: 'refs/heads/old-feature was deleted' } });
    expect(await github('gh', 'push', { ref: 'refs/heads/main' })).toMatchObject({ status: 400, body: { message: expect.stringMatching(/"after" is missing/) } });
    const notJson = 'payload=%7B';
    expect((await post('gh', notJson, { ...headers, 'content-type': 'application/x-www-form-urlencoded', 'x-hub-signature-256': `sha256=${hmac(notJson)}` })).status).toBe(400);

    expect(await runsNow()).toBe(before);
    expect((await build.sys.api.request('GET', '/resources/thing/gh-feature')).status).toBe(404);
  });

  it('Gitea pull requests, GitLab pushes and tag pushes, and GitHub\'s form encoding clone the commit they name', async () => {
    const started: Array<[string, string]> = [];
    const gpr = fixture('gitea-pull_request');
    gpr.pull_request.head.repo.clone_url = build.repo.url;
    gpr.pull_request.head.sha = build.repo.feature;
    const gprBody = JSON.stringify(gpr);
    const r1 = await post('gitea', gprBody, { 'x-gitea-event': 'pull_request', 'x-gitea-delivery': randomUUID(), 'x-gitea-signature': hmac(gprBody) });
    expect(r1.status).toBe(202);
    started.push([r1.body.runid, build.repo.feature]);

    const glTag = fixture('gitlab-tag_push');
    glTag.project.git_http_url = build.repo.url;
    glTag.checkout_sha = build.repo.v1;
    glTag.after = git(build.repo.dir, 'rev-parse', 'v1');
    const glBody = JSON.stringify(glTag);
    const r2 = await post('gitlab', glBody, { 'x-gitlab-event': 'Tag Push Hook', 'x-gitlab-event-uuid': randomUUID(), 'x-gitlab-token': HOOK_SECRET });
    expect(r2.status).toBe(202);
    started.push([r2.body.runid, build.repo.v1]);
    expect((await post('gitlab', glBody, { 'x-gitlab-event': 'Tag Push Hook', 'x-gitlab-event-uuid': randomUUID(), 'x-gitlab-token': 'wrong' })).status).toBe(401);

    // GitHub's "application/x-www-form-urlencoded" content type: the signature covers the form body.
    const push = fixture('github-push');
    push.after = build.repo.main;
    push.repository.clone_url = build.repo.url;
    const form = `payload=${encodeURIComponent(JSON.stringify(push))}`;
    const r3 = await post('gh', form, { 'content-type': 'application/x-www-form-urlencoded', 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${hmac(form)}` });
    expect(r3.status).toBe(202);
    expect(r3.body.version).toBe(2);
    started.push([r3.body.runid, build.repo.main]);

    for (const [runid, commit] of started) {
      const run = await build.sys.waitForRun(runid, undefined, 120_000);
      expect(run.status).toBe('succeeded');
      expect(stepOf(run, 'clone').data).toMatchObject({ commit });
    }
    expect((await versionOf('gitea', 1)).trigger).toMatchObject({ event: 'pull_request', ref: 'refs/pull/3/head', commit: build.repo.feature, sender: 'contrib' });
    expect((await versionOf('gitlab', 1)).trigger).toMatchObject({ event: 'tag', ref: 'refs/tags/v1.0.0', project: '15', sender: 'jsmith' });
  });

  it('copies of one delivery sent at once start one run and all answer it', async () => {
    const payload = fixture('gitlab-push');
    payload.project.git_http_url = build.repo.url;
    payload.after = payload.checkout_sha = build.repo.mainCommits[0];
    const body = JSON.stringify(payload);
    const delivery = randomUUID();
    const before = (await build.sys.api.ok<Resource>('GET', '/resources/thing/gitlab')).version;
    const answers = await Promise.all(Array.from({ length: 4 }, () => post('gitlab', body, { 'x-gitlab-event': 'Push Hook', 'x-gitlab-event-uuid': delivery, 'x-gitlab-token': HOOK_SECRET })));
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202]);
    expect(new Set(answers.map((a) => a.body.runid)).size).toBe(1);
    expect((await build.sys.api.ok<Resource>('GET', '/resources/thing/gitlab')).version).toBe(before + 1);
    expect((await build.sys.waitForRun(answers[0].body.runid, undefined, 120_000)).status).toBe('succeeded');
  });

  it('a delivery whose taker stopped before writing its version is taken over with the run id it recorded; a copy still at work is waited for', async () => {
    const nc = await connect({ servers: build.sys.nats.url });
    try {
      const kv = await new Kvm(nc).open('conveyor-hook-deliveries');
      const keyOf = (trigger: string, delivery: string) => `${trigger}.${createHash('sha256').update(delivery).digest('hex').slice(0, 32)}`;
      const payload = fixture('gitlab-push');
      payload.project.git_http_url = build.repo.url;
      payload.after = payload.checkout_sha = build.repo.main;
      const body = JSON.stringify(payload);
      const send = (delivery: string) => post('gitlab', body, { 'x-gitlab-event': 'Push Hook', 'x-gitlab-event-uuid': delivery, 'x-gitlab-token': HOOK_SECRET });

      // What a gateway killed right after recording the delivery leaves: the run id, no version, 31 s ago.
      const stale = randomUUID();
      const recorded = newRunId();
      await kv.create(keyOf('gitlab', stale), JSON.stringify({ runid: recorded, at: Date.now() - 31_000 }));
      const taken = await send(stale);
      expect(taken).toMatchObject({ status: 202, body: { runid: recorded, resource: 'gitlab' } });
      expect((await build.sys.waitForRun(recorded, undefined, 120_000)).status).toBe('succeeded');

      // A copy that recorded it a moment ago and is still writing: waited for (8 s), then 409, starting nothing.
      const busy = randomUUID();
      await kv.create(keyOf('gitlab', busy), JSON.stringify({ runid: newRunId(), at: Date.now() }));
      const versionBefore = (await build.sys.api.ok<Resource>('GET', '/resources/thing/gitlab')).version;
      expect((await send(busy)).status).toBe(409);
      expect((await build.sys.api.ok<Resource>('GET', '/resources/thing/gitlab')).version).toBe(versionBefore);
    } finally {
      await nc.close();
    }
  });

  it('a git push to a bare repository with deploy/git/post-receive builds the pushed commit', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'conveyor-hook-'));
    try {
      const bare = join(tmp, 'app.git');
      git(tmp, 'clone', '-q', '--bare', build.repo.dir, bare);
      copyFileSync(join(ROOT, 'deploy', 'git', 'post-receive'), join(bare, 'hooks', 'post-receive'));
      chmodSync(join(bare, 'hooks', 'post-receive'), 0o755);
      const secretFile = join(tmp, 'hook.secret');
      writeFileSync(secretFile, HOOK_SECRET, { mode: 0o600 });
      // Read by the hook on the "server" side, as a real git server's would be.
      git(bare, 'config', 'conveyor.url', `${open.baseUrl}/hooks/plain`);
      git(bare, 'config', 'conveyor.secretFile', secretFile);
      git(bare, 'config', 'conveyor.repository', `file://${bare}`);
      await build.sys.api.ok('POST', '/triggers', { name: 'plain', source: 'generic', secret: 'hook-secret', resource: 'thing', pipeline: 'hook-build', repository: `file://${bare}` });

      const work = join(tmp, 'work');
      git(tmp, 'clone', '-q', bare, work);
      writeFileSync(join(work, 'version.txt'), 'pushed-1\n');
      git(work, 'commit', '-q', '-am', 'a pushed change');
      const commit = git(work, 'rev-parse', 'HEAD');
      const before = await runsNow();
      const out = await gitPush(work);
      expect(out).toMatch(/conveyor: refs\/heads\/main at [0-9a-f]{12}: run started/);

      const run = await waitFor('the pushed commit\'s run', async () => {
        const latest = await build.sys.api.request<Resource>('GET', '/resources/thing/plain');
        return latest.status === 200 && latest.body.spec.commit === commit && latest.body.runid ? build.sys.waitForRun(latest.body.runid, undefined, 120_000) : undefined;
      }, 30_000, 200);
      expect(run.status).toBe('succeeded');
      expect(stepOf(run, 'clone').data).toMatchObject({ commit });
      expect(await buildOutput(build.sys.api, run.id)).toContain('built pushed-1');
      expect(await runsNow()).toBe(before + 1);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('keeps /triggers to admins while /hooks needs no token; bad triggers are 400', async () => {
    const writer = new Api(build.sys.api.baseUrl, WRITER);
    const body = { name: 'w', source: 'github', secret: 'hook-secret', resource: 'thing', pipeline: 'hook-clone' };
    expect((await writer.request('POST', '/triggers', body)).status).toBe(403);
    expect((await open.request('GET', '/triggers')).status).toBe(401);
    expect((await writer.request('GET', '/triggers')).status).toBe(200);
    const bad: Array<[object, RegExp]> = [
      [{ secret: 'no-such-secret' }, /secret "no-such-secret" that does not exist/],
      [{ source: 'bitbucket' }, /source must be one of/],
      [{ events: ['push', 'release'] }, /each value in events must be one of/],
      [{ branches: [''] }, /empty glob/],
      [{ resourceName: 'x-${{ event.commit }}' }, /resourceName: \$\{\{ event.commit \}\} is not one of/],
      [{ pipeline: 'missing' }, /pipeline "missing" does not exist/],
      [{ source: 'generic', status: { api: 'https://api.github.com', token: 'hook-secret' } }, /status.forge/],
      [{ status: { api: 'ftp://x', token: 'hook-secret' } }, /http or https/],
      [{ name: 'Bad_Name' }, /name must be/],
    ];
    for (const [change, why] of bad) {
      const r = await build.sys.api.request<any>('POST', '/triggers', { ...body, ...change });
      expect([r.status, [r.body.message].flat().join('; ')]).toEqual([400, expect.stringMatching(why)]);
    }
    expect((await build.sys.api.request('GET', '/triggers/w')).status).toBe(404);
    // Replace keeps the last delivery; delete makes the hook 404.
    const replaced = await build.sys.api.ok<any>('PUT', '/triggers/gh', { source: 'github', secret: 'hook-secret', resource: 'thing', pipeline: 'hook-build', events: ['push'], resourceName: 'gh-${{ branch }}' });
    expect(replaced).toMatchObject({ events: ['push'], last: { outcome: expect.any(String) } });
    expect(replaced).not.toHaveProperty('branches');
    await build.sys.api.ok('POST', '/triggers', { ...body, name: 'gone' });
    expect((await build.sys.api.request('DELETE', '/triggers/gone')).status).toBe(204);
    expect((await github('gone', 'push', fixture('github-push'))).status).toBe(404);
  });
});

/**
 * `git push` of main; resolves to what it printed (the hook's lines come on stderr). Not spawnSync:
 * the gateway runs in this process and must answer the hook while git waits for it.
 */
function gitPush(work: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['push', 'origin', 'main'], {
      cwd: work,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, GIT_CONFIG_NOSYSTEM: '1', LC_ALL: 'C' },
      timeout: 60_000,
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`git push failed (${code}): ${out}`))));
  });
}
