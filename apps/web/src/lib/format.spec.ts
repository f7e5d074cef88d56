import { formatTime, formatUntil } from './format';

describe('formatUntil', () => {
  const now = Date.parse('2026-12-03T06:00:00.000Z');

  it('writes seconds, minutes and hours like the durations, then days', () => {
    expect(formatUntil('2026-12-03T06:00:30.000Z', now)).toBe('in 30 s');
    expect(formatUntil('2026-12-03T08:30:00.000Z', now)).toBe('in 2 h 30 m');
    expect(formatUntil('2026-12-04T18:00:00.000Z', now)).toBe('in 36 h 0 m');
    expect(formatUntil('2027-01-01T00:00:00.000Z', now)).toBe('in 28 days');
  });

  it('a time already past, none, or not a time', () => {
    expect(formatUntil('2026-12-03T05:59:00.000Z', now)).toBe('now');
    expect(formatUntil(null, now)).toBe('—');
    expect(formatUntil('soon', now)).toBe('—');
  });
});

describe('formatTime', () => {
  it('writes the time in the named zone, and the ISO text when it is not a time', () => {
    expect(formatTime('2027-01-01T00:00:00.000Z', 'Asia/Tokyo')).toMatch(/9:00.* Asia\/Tokyo$/);
    expect(formatTime('not a time')).toBe('not a time');
  });
});
