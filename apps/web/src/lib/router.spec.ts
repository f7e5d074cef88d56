import { href, parseHash } from './router';

describe('dashboard addresses', () => {
  it('round-trip through the fragment', () => {
    const h = href(['runs', '01abc'], { step: 'build step', line: 42, empty: undefined });
    expect(h).toBe('#/runs/01abc?step=build+step&line=42');
    const r = parseHash(h);
    expect(r.parts).toEqual(['runs', '01abc']);
    expect(r.query.get('step')).toBe('build step');
    expect(Number(r.query.get('line'))).toBe(42);
  });

  it('read an empty or odd fragment without throwing', () => {
    expect(parseHash('').parts).toEqual([]);
    expect(parseHash('#/runs/%E0%A4%A').parts).toEqual(['runs', '%E0%A4%A']);
  });
});
