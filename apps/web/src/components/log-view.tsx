import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { buildView, enclosingGroups, extendView, lineIndexOfNumber, rawText, searchLines, type LogModel, type LogView as View } from '../lib/log-model';
import { saveBlob } from '../api/client';
import { AnsiText } from './ansi';

/** Every row has this height (CSS `--log-row`): which rows are on screen is then arithmetic. */
const ROW = 20;
/** Rows drawn beyond the visible ones, above and below, so a fast scroll shows no blank. */
const OVERSCAN = 30;

export interface LogViewProps {
  model: LogModel;
  /** The model's `version`, so the view draws again when lines arrive. */
  version: number;
  /** One step's lines, or the whole run's. */
  stepId?: string;
  /** Shown in the whole run's view before each line. */
  showStep: boolean;
  /** The address of line N of this view (for the line-number links). */
  lineHref: (n: number) => string;
  /** A line to show and mark (from the address). */
  targetLine?: number;
  /** File name of the raw log download. */
  downloadName: string;
  label: string;
}

/**
 * A run's or a step's log: virtualised (only the rows on screen are in the DOM, so 100,000 lines
 * scroll like 100), ANSI colours, line numbers that are links, timestamps on demand, follow that
 * stops when the user scrolls up and resumes at the bottom, search, `::group::` sections that
 * fold, and the raw log as a download.
 */
export function LogView(p: LogViewProps) {
  const { model } = p;
  const box = useRef<HTMLDivElement>(null);
  const [choices, setChoices] = useState<Map<number, boolean>>(new Map());
  const [follow, setFollow] = useState(p.targetLine === undefined);
  const [timestamps, setTimestamps] = useState(false);
  const [scroll, setScroll] = useState({ top: 0, height: 600 });
  const [query, setQuery] = useState('');
  const [hit, setHit] = useState(0);
  const [marked, setMarked] = useState<number | undefined>(undefined);

  // The view is extended in place while lines arrive, built again when what is hidden changes.
  const viewRef = useRef<{ view: View; key: string } | undefined>(undefined);
  const key = `${p.stepId ?? ''}|${model.structure}|${[...choices].join(',')}|${model.groups.length}`;
  const collapsed = model.collapsedBy(choices);
  if (!viewRef.current || viewRef.current.key !== key) viewRef.current = { view: buildView(model, p.stepId, collapsed), key };
  else extendView(viewRef.current.view, model, p.stepId, collapsed);
  const rows = viewRef.current.view.rows;
  const total = viewRef.current.view.counted;

  const matches = useMemo(() => (query.length >= 2 ? searchLines(model, p.stepId, query) : []), [query, p.stepId, model, query && p.version]);
  const matchSet = useMemo(() => new Set(matches), [matches]);

  // Follow: stay at the bottom while lines arrive.
  useLayoutEffect(() => {
    const el = box.current;
    if (el && follow) el.scrollTop = el.scrollHeight;
  }, [rows.length, follow]);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setScroll({ top: el.scrollTop, height: el.clientHeight }));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  /** Scrolls to a model line, opening the groups it sits in, and marks it. */
  const reveal = (index: number) => {
    const groups = enclosingGroups(model, index).filter((g) => collapsed.has(g));
    if (groups.length) {
      const next = new Map(choices);
      for (const g of groups) next.set(g, false);
      setChoices(next);
    }
    setMarked(index);
    setFollow(false);
    pending.current = index;
  };
  const pending = useRef<number | undefined>(undefined);
  useLayoutEffect(() => {
    const index = pending.current;
    const el = box.current;
    if (index === undefined || !el) return;
    const at = lowerBound(rows, index);
    if (at < rows.length && rows[at].index === index) {
      el.scrollTop = Math.max(0, at * ROW - el.clientHeight / 2);
      pending.current = undefined;
    }
  });

  // A line named in the address: shown once it has arrived.
  const targetShown = useRef<number | undefined>(undefined);
  useEffect(() => {
    if (p.targetLine === undefined || targetShown.current === p.targetLine) return;
    const index = lineIndexOfNumber(model, p.stepId, p.targetLine);
    if (index !== undefined) {
      targetShown.current = p.targetLine;
      reveal(index);
    }
  });

  const go = (delta: number) => {
    if (!matches.length) return;
    const next = (hit + delta + matches.length) % matches.length;
    setHit(next);
    reveal(matches[next]);
  };

  const onScroll = () => {
    const el = box.current!;
    setScroll({ top: el.scrollTop, height: el.clientHeight });
    const atBottom = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW;
    if (atBottom !== follow) setFollow(atBottom);
  };

  const download = () => {
    saveBlob(new Blob([rawText(model, p.stepId)], { type: 'text/plain;charset=utf-8' }), p.downloadName);
  };

  const first = Math.max(0, Math.floor(scroll.top / ROW) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scroll.top + scroll.height) / ROW) + OVERSCAN);
  const current = matches.length ? matches[Math.min(hit, matches.length - 1)] : undefined;

  return (
    <section class="log" aria-label={p.label}>
      <div class="log-toolbar" role="toolbar" aria-label="Log tools">
        <label class="log-search">
          <span class="sr-only">Search the log</span>
          <input
            type="search"
            placeholder="Search the log"
            value={query}
            onInput={(e) => {
              setQuery((e.target as HTMLInputElement).value);
              setHit(0);
            }}
            onKeyDown={(e) => {
              if (e.key === 'Enter') go(e.shiftKey ? -1 : 1);
            }}
          />
        </label>
        <span class="muted" aria-live="polite" data-testid="log-matches">
          {query.length >= 2 ? (matches.length ? `${Math.min(hit, matches.length - 1) + 1} of ${matches.length}` : 'no match') : ''}
        </span>
        <button type="button" onClick={() => go(-1)} disabled={!matches.length} aria-label="Previous match">
          ↑
        </button>
        <button type="button" onClick={() => go(1)} disabled={!matches.length} aria-label="Next match">
          ↓
        </button>
        <button type="button" aria-pressed={timestamps} onClick={() => setTimestamps(!timestamps)}>
          Timestamps
        </button>
        <button
          type="button"
          aria-pressed={follow}
          onClick={() => {
            setFollow(true);
            const el = box.current;
            if (el) el.scrollTop = el.scrollHeight;
          }}
        >
          Follow
        </button>
        <button type="button" onClick={download}>
          Download
        </button>
        <span class="muted log-count" data-testid="log-count">
          {total.toLocaleString('en')} lines
        </span>
      </div>
      {/* A log region is polite by default: a screen reader would read every arriving line. */}
      <div class="log-box" ref={box} onScroll={onScroll} tabIndex={0} role="log" aria-live="off" aria-label={p.label} data-testid="log-box">
        <div class="log-rows" style={{ height: `${rows.length * ROW}px` }}>
          {rows.slice(first, last).map((r, i) => {
            const l = model.lines[r.index];
            const top = (first + i) * ROW;
            const cls = `log-row${l.stream === 'stderr' ? ' stderr' : ''}${matchSet.has(r.index) ? ' hit' : ''}${r.index === current ? ' current' : ''}${r.index === marked ? ' marked' : ''}`;
            return (
              <div key={r.index} class={cls} style={{ transform: `translateY(${top}px)` }} data-line={r.number}>
                <a class="ln" href={p.lineHref(r.number)} aria-label={`line ${r.number}`} tabIndex={-1}>
                  {r.number}
                </a>
                {timestamps && <span class="ts">{l.ts.slice(11, 23)}</span>}
                {p.showStep && <span class="step-tag">{l.stepId}</span>}
                {l.opens !== undefined ? (
                  <button
                    type="button"
                    class="group-toggle"
                    aria-expanded={!collapsed.has(l.opens)}
                    onClick={() => setChoices(new Map(choices).set(l.opens!, !collapsed.has(l.opens!)))}
                  >
                    <span aria-hidden="true">{collapsed.has(l.opens) ? '▸' : '▾'}</span> {model.groups[l.opens].title}
                  </button>
                ) : (
                  <span class="text">
                    <AnsiText text={l.line} />
                  </span>
                )}
              </div>
            );
          })}
        </div>
      </div>
    </section>
  );
}

function lowerBound(rows: Array<{ index: number }>, index: number): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (rows[mid].index < index) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
