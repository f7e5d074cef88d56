import { layoutGraph, resolveNeeds } from './graph-layout';

describe('layoutGraph', () => {
  it('puts each step one column right of the deepest step it needs', () => {
    const l = layoutGraph([
      { id: 'start', needs: [] },
      { id: 'a', needs: ['start'] },
      { id: 'b', needs: ['start'] },
      { id: 'c', needs: ['a'] },
      { id: 'join', needs: ['b', 'c'] },
    ]);
    const col = Object.fromEntries(l.nodes.map((n) => [n.id, n.column]));
    expect(col).toEqual({ start: 0, a: 1, b: 1, c: 2, join: 3 });
    expect(l.columns).toBe(4);
    expect(l.rows).toBe(2);
    expect(l.edges).toContainEqual({ from: 'c', to: 'join' });
  });

  it('orders a column by where the steps it needs are, and survives a cycle and an unknown need', () => {
    const l = layoutGraph([
      { id: 'x', needs: [] },
      { id: 'y', needs: [] },
      { id: 'from-y', needs: ['y'] },
      { id: 'from-x', needs: ['x', 'nowhere'] },
      { id: 'p', needs: ['q'] },
      { id: 'q', needs: ['p'] },
    ]);
    const at = Object.fromEntries(l.nodes.map((n) => [n.id, n]));
    expect(at['from-x'].row).toBeLessThan(at['from-y'].row);
    expect(l.edges.some((e) => e.from === 'nowhere')).toBe(false);
  });

  it('resolves a pipeline definition\'s needs: absent means the step before', () => {
    expect(resolveNeeds([{ id: 'a' }, { id: 'b' }, { id: 'c', needs: [] }, { id: 'd', needs: ['a', 'c'] }]).map((s) => s.needs)).toEqual([[], ['a'], [], ['a', 'c']]);
  });
});
