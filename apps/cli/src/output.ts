import { stringify } from 'yaml';
import { CliError } from './errors';

export type OutputFormat = 'table' | 'json' | 'yaml';

export function parseFormat(value: string | undefined): OutputFormat {
  if (value === undefined) return 'table';
  if (value === 'json' || value === 'yaml') return value;
  throw new CliError(`-o ${value}: use json or yaml`);
}

/** Prints `value` as JSON or YAML (for scripts), or nothing and returns false for `table`. */
export function printStructured(format: OutputFormat, value: unknown): boolean {
  if (format === 'json') process.stdout.write(JSON.stringify(value, null, 2) + '\n');
  else if (format === 'yaml') process.stdout.write(stringify(value));
  else return false;
  return true;
}

/** Columns padded to the widest cell, like kubectl's tables; the last column is not padded. */
export function table(headers: string[], rows: Array<Array<string | number | undefined>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === undefined || c === '' ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('   ').trimEnd()).join('\n') + '\n';
}

/** "3s", "2m05s", "1h02m": short durations for tables. */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Time since an ISO timestamp, for an AGE column. */
export function age(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '-';
  return formatDuration(now - Date.parse(iso));
}

/** Colour only on a terminal, and never with NO_COLOR set (https://no-color.org). */
export function useColor(stream: NodeJS.WriteStream = process.stdout): boolean {
  return Boolean(stream.isTTY) && !process.env.NO_COLOR;
}

const PALETTE = [36, 33, 35, 32, 34, 91, 96, 93];
export function paint(text: string, code: number, on: boolean): string {
  return on ? `\x1b[${code}m${text}\x1b[0m` : text;
}
/** A stable colour per key (e.g. a step id), so one step's lines always share a colour. */
export function colorFor(key: string): number {
  let h = 0;
  for (const ch of key) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}
export const STATUS_COLOR: Record<string, number> = { succeeded: 32, failed: 31, cancelled: 33, running: 36, retrying: 33, queued: 90, pending: 90, skipped: 90 };
