/**
 * The log of a run as the dashboard holds it: every line once, in stream order, with what a
 * view needs to draw 100,000 lines without slowing down — a view (the whole run, or one step)
 * is an array of indices, collapsed `::group::` sections are left out of the rows drawn, and a
 * search scans plain text prepared once per line. No DOM here: the log view draws the rows.
 */

/** One stored log line, as the gateway's log stream sends it (LogLine plus its stream sequence). */
export interface IncomingLine {
  /** JetStream sequence of the line: the SSE event id, unique and increasing within a run. */
  seq: number;
  stepId: string;
  driver: string;
  attempt: number;
  ts: string;
  stream: string;
  line: string;
}

export interface LogLineEntry extends IncomingLine {
  /** The text without ANSI escapes, for search and for the raw download's plain variant. */
  plain: string;
  /** Set on a `::group::` line: the group it opens. */
  opens?: number;
  /** Set on an `::endgroup::` line: it is not drawn. */
  closes?: boolean;
  /** The innermost group the line belongs to (the opening line belongs to the outer one). */
  group?: number;
}

export interface LogGroup {
  id: number;
  title: string;
  /** The group this one is nested in. */
  parent?: number;
  /** Its `::endgroup::` arrived: a group still open is shown expanded (the step is printing into it). */
  closed: boolean;
}

/** Which groups are collapsed: the user's choice where they made one, else closed groups are. */
export interface Collapsed {
  has(group: number): boolean;
}

/** A row of a view: a line, with its number in that view (1-based, the number users link to). */
export interface LogRow {
  index: number;
  number: number;
}

// CSI sequences (colours, cursor moves) and OSC sequences (titles, links): what terminals print.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]/g;

export function stripAnsi(text: string): string {
  return text.includes('\u001b') ? text.replace(ANSI, '') : text;
}

const GROUP_START = /^::group::(.*)$/;
const GROUP_END = /^::endgroup::\s*$/;

export class LogModel {
  readonly lines: LogLineEntry[] = [];
  readonly groups: LogGroup[] = [];
  /** The highest sequence held: a reconnect resumes after it, and anything at or below it is a repeat. */
  lastSeq = 0;
  /** Collapsed groups by default: closed ones, unless the user opened them (`choices`: group → collapsed). */
  collapsedBy(choices: ReadonlyMap<number, boolean>): Collapsed {
    return { has: (g) => choices.get(g) ?? this.groups[g].closed };
  }

  /** Lines offered again (a resume that overlapped): dropped, counted for the tests and the curious. */
  repeats = 0;
  /** Bumped on every change, so a view knows when to draw again. */
  version = 0;
  /** Bumped when a group closes: which lines are drawn changed, so views are built again, not extended. */
  structure = 0;
  private readonly open = new Map<string, number[]>();

  /** Adds lines in order; a line at or below the last sequence is a repeat and is dropped. */
  append(batch: IncomingLine[]): number {
    let added = 0;
    for (const l of batch) {
      if (l.seq <= this.lastSeq) {
        this.repeats++;
        continue;
      }
      this.lastSeq = l.seq;
      const text = l.line.endsWith('\n') ? l.line.slice(0, -1) : l.line;
      const plain = stripAnsi(text);
      const entry: LogLineEntry = { ...l, line: text, plain };
      // Groups are per step attempt: a group one step opened never swallows another's lines.
      const key = `${l.stepId}\u0000${l.attempt}`;
      const stack = this.open.get(key) ?? [];
      const start = GROUP_START.exec(plain);
      if (start) {
        entry.group = stack.at(-1);
        const id = this.groups.length;
        this.groups.push({ id, title: start[1].trim() || 'group', parent: stack.at(-1), closed: false });
        entry.opens = id;
        stack.push(id);
        this.open.set(key, stack);
      } else if (GROUP_END.test(plain)) {
        entry.closes = true;
        entry.group = stack.pop();
        if (entry.group !== undefined) {
          this.groups[entry.group].closed = true;
          this.structure++;
        }
      } else {
        entry.group = stack.at(-1);
      }
      this.lines.push(entry);
      added++;
    }
    if (added) this.version++;
    return added;
  }
}

/** The rows of one view and how far it has read the model, so arriving lines extend it in place. */
export interface LogView {
  rows: LogRow[];
  /** Lines of the view counted so far, drawn or not (the next line's number is this + 1). */
  counted: number;
  /** Index of the first model line not yet looked at. */
  scanned: number;
}

/**
 * The rows of one view (all steps, or `stepId`'s), leaving out `::endgroup::` lines and the
 * lines of collapsed groups (a collapsed group's own `::group::` line stays: it is the toggle).
 */
export function buildView(model: LogModel, stepId: string | undefined, collapsed: Collapsed): LogView {
  const view: LogView = { rows: [], counted: 0, scanned: 0 };
  extendView(view, model, stepId, collapsed);
  return view;
}

/** Continues a view with the lines that arrived since it was built or last extended. */
export function extendView(view: LogView, model: LogModel, stepId: string | undefined, collapsed: Collapsed): void {
  for (let i = view.scanned; i < model.lines.length; i++) {
    const l = model.lines[i];
    if (stepId !== undefined && l.stepId !== stepId) continue;
    if (l.closes) continue;
    view.counted++;
    if (hidden(model, l.group, collapsed)) continue;
    view.rows.push({ index: i, number: view.counted });
  }
  view.scanned = model.lines.length;
}

/** Line numbers count every line of the view, hidden or not, so a link to line N means the same line for everyone. */
function hidden(model: LogModel, group: number | undefined, collapsed: Collapsed): boolean {
  for (let g = group; g !== undefined; g = model.groups[g].parent) if (collapsed.has(g)) return true;
  return false;
}

/** Every group that encloses the line at `index` (to open them when a search or a link lands inside). */
export function enclosingGroups(model: LogModel, index: number): number[] {
  const out: number[] = [];
  for (let g = model.lines[index]?.group; g !== undefined; g = model.groups[g].parent) out.push(g);
  return out;
}

/** Indices of the lines of the view whose plain text contains `query` (case-insensitive), in order. */
export function searchLines(model: LogModel, stepId: string | undefined, query: string): number[] {
  const q = query.toLowerCase();
  if (!q) return [];
  const out: number[] = [];
  for (let i = 0; i < model.lines.length; i++) {
    const l = model.lines[i];
    if (l.closes || (stepId !== undefined && l.stepId !== stepId)) continue;
    if (l.plain.toLowerCase().includes(q)) out.push(i);
  }
  return out;
}

/** The raw text of a view, one line per line as the build printed it (escapes kept), for download. */
export function rawText(model: LogModel, stepId: string | undefined): string {
  const parts: string[] = [];
  for (const l of model.lines) if (stepId === undefined || l.stepId === stepId) parts.push(l.line);
  return parts.length ? `${parts.join('\n')}\n` : '';
}

/** The index of the line numbered `number` in a view (numbers count lines, not drawn rows). */
export function lineIndexOfNumber(model: LogModel, stepId: string | undefined, number: number): number | undefined {
  let n = 0;
  for (let i = 0; i < model.lines.length; i++) {
    const l = model.lines[i];
    if (l.closes || (stepId !== undefined && l.stepId !== stepId)) continue;
    if (++n === number) return i;
  }
  return undefined;
}
