import { createHmac } from 'node:crypto';
import type { Run, TriggerOrigin } from '@conveyor/contracts';
import { afterAnswer, afterNoAnswer, backoffMs, notificationRequest, plannedReports, projectOfCloneUrl, shownTarget, statusRequest, waitAskedFor, type HeaderOf } from './index';

const origin: TriggerOrigin = {
  trigger: 'web',
  source: 'github',
  event: 'push',
  delivery: 'd-1',
  repository: 'https://github.example/acme/web.git',
  ref: 'refs/heads/main',
  commit: 'a'.repeat(40),
  project: 'acme/web',
  sender: 'ada',
  status: { api: 'https://api.github.example/', token: 'gh-token' },
};

function run(over: Partial<Run> = {}): Run {
  return {
    id: '01JRUN',
    pipeline: { name: 'build', resource: 'app', steps: [{ id: 'b', name: 'b', driver: 'builder' }] },
    resource: { type: 'app', name: 'web', version: 3 },
    status: 'running',
    steps: [{ id: 'b', name: 'b', driver: 'builder', always: false, needs: [], status: 'running', attempts: 1 }],
    cancelRequested: false,
    createdAt: '2026-12-03T00:00:00.000Z',
    trigger: origin,
    ...over,
  };
}
const opts = { publicUrl: 'https://ci.example/', now: '2026-12-03T00:00:01.000Z' };
const headers = (h: Record<string, string>): HeaderOf => (name) => h[name];
const policy = { maxAttempts: 4, retryBaseMs: 1000, retryMaxMs: 10_000 };

describe('planned reports', () => {
  it('a webhook run reports pending at its start and its outcome at its end, linking to its page', () => {
    const [start] = plannedReports(run(), 'start', opts);
    expect(start).toMatchObject({ id: '01JRUN.status.start', kind: 'status', status: { state: 'pending', commit: origin.commit, url: 'https://ci.example/#/runs/01JRUN', target: { forge: 'github', project: 'acme/web', context: 'conveyor/build' } } });
    const [end] = plannedReports(run({ status: 'failed', message: 'step b failed: exit 2', durationMs: 2500 }), 'end', opts);
    expect(end.status).toMatchObject({ state: 'failure', description: 'Failed in 2.5 s: step b failed: exit 2' });
    expect(plannedReports(run(), 'end', opts)).toEqual([]);
  });

  it("speaks each forge's words, and finds the project in the clone URL when the event gave none", () => {
    const gitlab = { ...origin, source: 'gitlab' as const, project: undefined, repository: 'git@gitlab.example:group/sub/app.git' };
    const [end] = plannedReports(run({ status: 'cancelled', trigger: gitlab }), 'end', opts);
    expect(end.status).toMatchObject({ state: 'canceled', target: { forge: 'gitlab', project: 'group/sub/app' } });
    const gitea = { ...origin, source: 'generic' as const, status: { ...origin.status!, forge: 'gitea' as const, context: 'ci' } };
    expect(plannedReports(run({ status: 'succeeded', trigger: gitea }), 'end', opts)[0].status).toMatchObject({ state: 'success', target: { forge: 'gitea', context: 'ci' } });
    // A generic trigger that names no forge has nowhere to report.
    expect(plannedReports(run({ trigger: { ...origin, source: 'generic' } }), 'start', opts)).toEqual([]);
    // One whose event names no project and whose clone URL has no owner/name: a report that says so when it is sent.
    const [lost] = plannedReports(run({ trigger: { ...origin, project: undefined, repository: 'https://git.example/app.git' } }), 'start', opts);
    expect(() => statusRequest(lost, 'tok')).toThrow('no project to report the status to: the event named none and its clone URL has no owner/name path; set status.project on the trigger');
    expect(projectOfCloneUrl('https://host/acme/web.git')).toBe('acme/web');
    expect(projectOfCloneUrl('https://host/web')).toBeUndefined();
  });

  it("notifies each target whose `on` names the outcome, with the run's summary", () => {
    const notify = [
      { url: 'https://chat.example/a', on: ['failed' as const] },
      { url: 'https://chat.example/b', on: ['succeeded' as const, 'failed' as const], secret: 's' },
    ];
    const r = run({ status: 'succeeded', durationMs: 61_000, pipeline: { ...run().pipeline, notify }, trigger: undefined });
    const jobs = plannedReports(r, 'end', opts);
    expect(jobs.map((j) => j.id)).toEqual(['01JRUN.notify.1']);
    expect(jobs[0].notification).toMatchObject({ event: 'succeeded', summary: { event: 'run.succeeded', run: { id: '01JRUN', status: 'succeeded', durationMs: 61_000, steps: [{ id: 'b', status: 'running' }] } } });
    expect(plannedReports(r, 'start', opts)).toEqual([]);
  });
});

describe('report requests', () => {
  const [job] = plannedReports(run(), 'start', opts);
  it('GitHub: bearer token, the statuses path, state/target_url/description/context', () => {
    const r = statusRequest(job, 'tok');
    expect(r.url).toBe(`https://api.github.example/repos/acme/web/statuses/${origin.commit}`);
    expect(r.headers).toMatchObject({ authorization: 'Bearer tok', accept: 'application/vnd.github+json' });
    expect(JSON.parse(r.body)).toEqual({ state: 'pending', target_url: 'https://ci.example/#/runs/01JRUN', description: 'Running pipeline build', context: 'conveyor/build' });
  });
  it('Gitea: `token` authorization; GitLab: PRIVATE-TOKEN, the encoded project path, name and ref', () => {
    const gitea = { ...job, status: { ...job.status!, target: { ...job.status!.target, forge: 'gitea' as const } } };
    expect(statusRequest(gitea, 'tok').headers.authorization).toBe('token tok');
    const gitlab = { ...job, status: { ...job.status!, state: 'running', target: { ...job.status!.target, forge: 'gitlab' as const, project: 'group/app' } } };
    const r = statusRequest(gitlab, 'tok');
    expect(r.url).toBe(`https://api.github.example/projects/group%2Fapp/statuses/${origin.commit}`);
    expect(r.headers['private-token']).toBe('tok');
    expect(JSON.parse(r.body)).toMatchObject({ state: 'running', name: 'conveyor/build', ref: 'main' });
  });
  it('a notification is signed like a generic webhook when it names a secret, and carries a delivery id', () => {
    const [n] = plannedReports(run({ status: 'failed', pipeline: { ...run().pipeline, notify: [{ url: 'https://x.example/h?token=1', on: ['failed'] }] } }), 'end', opts).filter((j) => j.kind === 'notification');
    const signed = notificationRequest(n, 'sekrit');
    expect(signed.headers['x-conveyor-signature-256']).toBe(`sha256=${createHmac('sha256', 'sekrit').update(signed.body).digest('hex')}`);
    expect(signed.headers).toMatchObject({ 'x-conveyor-event': 'run.failed', 'x-conveyor-delivery': '01JRUN.notify.0' });
    expect(notificationRequest(n, undefined).headers['x-conveyor-signature-256']).toBeUndefined();
    expect(shownTarget('https://u:p@x.example/h?token=1')).toBe('https://x.example/h');
  });
});

describe('retry policy', () => {
  const now = Date.parse('2026-12-03T00:00:00Z');
  it('2xx is delivered; 4xx other than 408/425/429 is given up at once; 5xx and no answer are tried again with back-off until the limit', () => {
    expect(afterAnswer(201, headers({}), 1, policy)).toEqual({ kind: 'delivered' });
    expect(afterAnswer(401, headers({}), 1, policy)).toMatchObject({ kind: 'give-up', error: 'HTTP 401: the receiver refused it' });
    expect(afterAnswer(503, headers({}), 1, policy)).toMatchObject({ kind: 'retry', error: 'HTTP 503' });
    expect(afterAnswer(503, headers({}), 4, policy)).toMatchObject({ kind: 'give-up', error: 'HTTP 503; gave up after 4 attempts' });
    expect(afterNoAnswer('connect ECONNREFUSED', 2, policy)).toMatchObject({ kind: 'retry' });
  });
  it('back-off doubles up to the cap, with at most a fifth of jitter', () => {
    expect([1, 2, 3, 4, 5, 9].map((a) => backoffMs(a, policy, () => 0))).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
    expect(backoffMs(2, policy, () => 1)).toBe(1600);
  });
  it("honours Retry-After (seconds or a date) and spent rate limits (GitHub's 403, GitLab's 429, epoch or delta resets)", () => {
    expect(afterAnswer(429, headers({ 'retry-after': '7' }), 1, policy, now)).toMatchObject({ kind: 'retry', delayMs: 7000 });
    expect(waitAskedFor(headers({ 'retry-after': new Date(now + 30_000).toUTCString() }), now)).toBe(30_000);
    const github = { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 + 120) };
    expect(afterAnswer(403, headers(github), 1, policy, now)).toMatchObject({ kind: 'retry', delayMs: 120_000 });
    expect(afterAnswer(403, headers({ 'x-ratelimit-remaining': '12' }), 1, policy, now)).toMatchObject({ kind: 'give-up' });
    expect(afterAnswer(429, headers({ 'ratelimit-remaining': '0', 'ratelimit-reset': '15' }), 1, policy, now)).toMatchObject({ kind: 'retry', delayMs: 15_000 });
    // A success that spent the limit holds the API until the reset.
    expect(afterAnswer(201, headers(github), 1, policy, now)).toEqual({ kind: 'delivered', holdApiMs: 120_000 });
    // Asked to wait a day: asked again within the hour.
    expect(waitAskedFor(headers({ 'retry-after': '86400' }), now)).toBe(3_600_000);
  });
});
