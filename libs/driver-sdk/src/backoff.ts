/** Exponential back-off with ±20% jitter, so retries of many runs do not line up. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.max(1, Math.round(exp * (0.8 + 0.4 * random())));
}
