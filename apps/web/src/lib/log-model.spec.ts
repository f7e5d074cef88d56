import { buildView, enclosingGroups, extendView, LogModel, lineIndexOfNumber, rawText, searchLines, stripAnsi, type IncomingLine } from './log-model';

let seq = 0;
const line = (text: string, stepId = 'build', attempt = 1): IncomingLine => ({ seq: ++seq, stepId, driver: 'builder', attempt, ts: '2026-12-02T10:00:00.000Z', stream: 'stdout', line: text });

describe('LogModel', () => {
  beforeEach(() => (seq = 0));

  it('keeps each line once: a resumed stream that repeats lines adds nothing', () => {
    const m = new LogModel();
    const a = [line('one'), line('two'), line('three')];
    expect(m.append(a)).toBe(3);
    expect(m.append([a[1], a[2]])).toBe(0);
    expect(m.repeats).toBe(2);
    expect(m.append([line('four')])).toBe(1);
    expect(m.lines.map((l) => l.line)).toEqual(['one', 'two', 'three', 'four']);
    expect(m.lastSeq).toBe(4);
  });

  it('strips ANSI escapes for search but keeps them in the line', () => {
    const m = new LogModel();
    m.append([line('\u001b[31mred\u001b[0m text\n')]);
    expect(m.lines[0].line).toBe('\u001b[31mred\u001b[0m text');
    expect(m.lines[0].plain).toBe('red text');
    expect(stripAnsi('\u001b]0;title\u0007\u001b[1;38;5;196mx\u001b[0m')).toBe('x');
  });

  it('folds ::group:: sections once closed; a group still open shows its lines; numbers count hidden lines', () => {
    const m = new LogModel();
    m.append([line('before'), line('::group::Install'), line('a'), line('b')]);
    const none = new Map<number, boolean>();
    let v = buildView(m, undefined, m.collapsedBy(none));
    expect(v.rows.map((r) => m.lines[r.index].line)).toEqual(['before', '::group::Install', 'a', 'b']);
    m.append([line('::endgroup::'), line('after')]);
    expect(m.structure).toBe(1);
    v = buildView(m, undefined, m.collapsedBy(none));
    expect(v.rows.map((r) => [r.number, m.lines[r.index].line])).toEqual([
      [1, 'before'],
      [2, '::group::Install'],
      [5, 'after'],
    ]);
    // Opened by the user: every line but the ::endgroup:: marker.
    v = buildView(m, undefined, m.collapsedBy(new Map([[0, false]])));
    expect(v.rows.map((r) => r.number)).toEqual([1, 2, 3, 4, 5]);
    expect(enclosingGroups(m, 2)).toEqual([0]);
  });

  it('nests groups, and never lets one step attempt close another one\'s group', () => {
    const m = new LogModel();
    m.append([line('::group::outer'), line('::group::inner'), line('x'), line('::group::other', 'test'), line('::endgroup::'), line('y')]);
    expect(m.groups.map((g) => [g.title, g.parent, g.closed])).toEqual([
      ['outer', undefined, false],
      ['inner', 0, true],
      ['other', undefined, false],
    ]);
    expect(enclosingGroups(m, 2)).toEqual([1, 0]);
    expect(m.lines[5].group).toBe(0);
  });

  it('extends a view with arriving lines exactly as building it again would', () => {
    const m = new LogModel();
    m.append([line('a'), line('b', 'test'), line('::group::g'), line('c')]);
    const c = m.collapsedBy(new Map());
    const v = buildView(m, 'build', c);
    m.append([line('d', 'test'), line('e')]);
    extendView(v, m, 'build', c);
    expect(v).toEqual(buildView(m, 'build', c));
    expect(v.rows.map((r) => m.lines[r.index].line)).toEqual(['a', '::group::g', 'c', 'e']);
  });

  it('searches a view case-insensitively, finds a line by its number, and gives the raw text', () => {
    const m = new LogModel();
    m.append([line('Hello'), line('other', 'test'), line('::group::g'), line('hello again'), line('::endgroup::')]);
    expect(searchLines(m, undefined, 'HELLO')).toEqual([0, 3]);
    expect(searchLines(m, 'test', 'hello')).toEqual([]);
    expect(lineIndexOfNumber(m, 'build', 3)).toBe(3);
    expect(lineIndexOfNumber(m, 'build', 9)).toBeUndefined();
    expect(rawText(m, 'test')).toBe('other\n');
  });

  it('holds 100,000 lines and builds a view of them quickly enough to redraw on a toggle', () => {
    const m = new LogModel();
    const batch: IncomingLine[] = [];
    for (let i = 0; i < 100_000; i++) batch.push(line(i % 1000 === 0 ? '::group::chunk' : i % 1000 === 999 ? '::endgroup::' : `line ${i}`));
    m.append(batch);
    const v = buildView(m, undefined, m.collapsedBy(new Map()));
    expect(v.counted).toBe(99_900);
    expect(v.rows).toHaveLength(100);
  });
});
