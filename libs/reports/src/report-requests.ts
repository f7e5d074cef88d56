import { createHmac } from 'node:crypto';
import type { ReportJob } from '@conveyor/contracts';

/** An HTTP request to send: always a POST of a JSON body. */
export interface ReportRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

const USER_AGENT = 'conveyor-reports/1';

/**
 * The forge API request that sets a commit status (the APIs' documented shapes):
 * GitHub `POST /repos/{owner}/{repo}/statuses/{sha}` with a bearer token, Gitea and Forgejo the
 * same path with `Authorization: token …`, GitLab `POST /projects/:id/statuses/:sha` (the
 * project's id or URL-encoded path) with `PRIVATE-TOKEN`, its context named `name`.
 */
export function statusRequest(job: ReportJob, token: string): ReportRequest {
  const s = job.status;
  if (!s) throw new Error(`report ${job.id} is not a commit status`);
  const api = s.target.api.replace(/\/+$/, '');
  const sha = encodeURIComponent(s.commit);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': USER_AGENT };
  if (!s.target.project) throw new Error('no project to report the status to: the event named none and its clone URL has no owner/name path; set status.project on the trigger');
  if (s.target.forge === 'gitlab') {
    headers['private-token'] = token;
    const ref = s.ref.replace(/^refs\/(heads|tags)\//, '');
    return {
      url: `${api}/projects/${encodeURIComponent(s.target.project)}/statuses/${sha}`,
      headers,
      body: JSON.stringify({ state: s.state, name: s.target.context, target_url: s.url, description: s.description, ...(ref ? { ref } : {}) }),
    };
  }
  const [owner, repo, ...rest] = s.target.project.split('/');
  if (!owner || !repo || rest.length) throw new Error(`project "${s.target.project}" is not owner/name`);
  if (s.target.forge === 'github') {
    headers.authorization = `Bearer ${token}`;
    headers.accept = 'application/vnd.github+json';
    headers['x-github-api-version'] = '2022-11-28';
  } else {
    headers.authorization = `token ${token}`;
  }
  return {
    url: `${api}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/statuses/${sha}`,
    headers,
    body: JSON.stringify({ state: s.state, target_url: s.url, description: s.description, context: s.target.context }),
  };
}

/**
 * A notification's request: the run summary, with the event and a delivery id the receiver can
 * drop repeats by (a delivery whose answer was lost is sent again), signed as a generic webhook
 * is (`X-Conveyor-Signature-256: sha256=<hex HMAC-SHA256 of the body>`) when a secret is named.
 */
export function notificationRequest(job: ReportJob, secret: string | undefined): ReportRequest {
  const n = job.notification;
  if (!n) throw new Error(`report ${job.id} is not a notification`);
  const body = JSON.stringify(n.summary);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    'x-conveyor-event': `run.${n.event}`,
    'x-conveyor-delivery': job.id,
  };
  if (secret !== undefined) headers['x-conveyor-signature-256'] = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  return { url: n.target.url, headers, body };
}

/** A URL as a run's reports show it: no credentials, no query (it may carry a token). */
export function shownTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url.split(/[?#]/)[0];
  }
}
