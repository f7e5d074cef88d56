/** How a report's tries are spaced and when they stop (CONVEYOR_REPORTS_*). */
export interface RetryPolicy {
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
}

/** What to do after a try. */
export type Verdict =
  | { kind: 'delivered'; holdApiMs?: number }
  | { kind: 'retry'; delayMs: number; error: string }
  | { kind: 'give-up'; error: string };

/** A response header by its lower-case name. */
export type HeaderOf = (name: string) => string | null | undefined;

/** A receiver asking us to wait longer than this is waited for this long, then asked again. */
const LONGEST_WAIT_MS = 60 * 60_000;

/**
 * The verdict on an HTTP answer. 2xx: delivered (and when the answer says the rate limit is
 * spent, the API is left alone until it resets). 408, 425, 429 and 5xx: tried again, after the
 * receiver's Retry-After or rate-limit reset when it gives one, else after the back-off. A 403
 * whose rate-limit headers say the limit is spent is GitHub's way of saying 429. Any other 4xx
 * will not get better by asking again (a wrong token, an unknown commit): given up at once.
 */
export function afterAnswer(status: number, header: HeaderOf, attempt: number, policy: RetryPolicy, now = Date.now()): Verdict {
  const wait = waitAskedFor(header, now);
  if (status >= 200 && status < 300) return wait !== undefined && rateLimitSpent(header) ? { kind: 'delivered', holdApiMs: wait } : { kind: 'delivered' };
  const error = `HTTP ${status}`;
  const transient = status === 408 || status === 425 || status === 429 || status >= 500 || (status === 403 && rateLimitSpent(header));
  if (!transient) return { kind: 'give-up', error: `${error}: the receiver refused it` };
  return retryOrGiveUp(error, attempt, policy, wait);
}

/** The verdict when no answer came (refused, reset, timed out, a name that does not resolve). */
export function afterNoAnswer(error: string, attempt: number, policy: RetryPolicy): Verdict {
  return retryOrGiveUp(error, attempt, policy, undefined);
}

function retryOrGiveUp(error: string, attempt: number, policy: RetryPolicy, wait: number | undefined): Verdict {
  if (attempt >= policy.maxAttempts) return { kind: 'give-up', error: `${error}; gave up after ${attempt} attempt${attempt === 1 ? '' : 's'}` };
  return { kind: 'retry', delayMs: wait ?? backoffMs(attempt, policy), error };
}

/** Doubling from the base up to the cap, with up to a fifth taken off at random so that many reports to one receiver do not come back at once. */
export function backoffMs(attempt: number, policy: Pick<RetryPolicy, 'retryBaseMs' | 'retryMaxMs'>, random = Math.random): number {
  const full = Math.min(policy.retryMaxMs, policy.retryBaseMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.round(full * (1 - 0.2 * random()));
}

/**
 * How long the receiver asks us to wait, when it says: `Retry-After` (seconds or an HTTP date),
 * else a spent rate limit's reset: GitHub's `X-RateLimit-Reset` and GitLab's `RateLimit-Reset`
 * (epoch seconds), or a draft-standard `RateLimit-Reset` in seconds from now.
 */
export function waitAskedFor(header: HeaderOf, now = Date.now()): number | undefined {
  const retryAfter = header('retry-after')?.trim();
  if (retryAfter) {
    const ms = /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : Date.parse(retryAfter) - now;
    if (Number.isFinite(ms)) return clamp(ms);
  }
  if (!rateLimitSpent(header)) return undefined;
  const reset = (header('x-ratelimit-reset') ?? header('ratelimit-reset'))?.trim();
  if (!reset || !/^\d+$/.test(reset)) return undefined;
  const n = Number(reset);
  // Epoch seconds are past 1e9; anything smaller is seconds from now.
  return clamp(n > 1e9 ? n * 1000 - now : n * 1000);
}

function rateLimitSpent(header: HeaderOf): boolean {
  return (header('x-ratelimit-remaining') ?? header('ratelimit-remaining'))?.trim() === '0';
}

function clamp(ms: number): number {
  return Math.max(0, Math.min(LONGEST_WAIT_MS, Math.round(ms)));
}
