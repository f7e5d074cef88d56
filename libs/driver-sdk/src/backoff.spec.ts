import { retryDelayMs } from './backoff';

describe('retryDelayMs', () => {
  it('doubles per attempt within ±20% and stops at the maximum', () => {
    const mid = () => 0.5;
    expect(retryDelayMs(1, 1000, 60_000, mid)).toBe(1000);
    expect(retryDelayMs(3, 1000, 60_000, mid)).toBe(4000);
    expect(retryDelayMs(20, 1000, 60_000, mid)).toBe(60_000);
    expect(retryDelayMs(1, 1000, 60_000, () => 0)).toBe(800);
    expect(retryDelayMs(1, 1000, 60_000, () => 1)).toBe(1200);
  });
});
