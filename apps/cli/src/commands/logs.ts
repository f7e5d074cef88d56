import type { LogLine, LogsEnd, Run, RunStatus } from '@conveyor/contracts';
import { toGatewayError, type GatewayClient } from '../client';
import { CliError, EXIT } from '../errors';
import { colorFor, formatDuration, paint, STATUS_COLOR, useColor } from '../output';
import { readSse } from '../sse';
import { currentStep } from './get';

export interface LogsOptions {
  follow: boolean;
  step?: string;
  timestamps: boolean;
}

/** The exit code that tells a script how a followed run ended. */
export function exitCodeOf(status: RunStatus): number {
  return status === 'succeeded' ? EXIT.ok : status === 'cancelled' ? EXIT.cancelled : EXIT.failed;
}

/**
 * `conveyor logs RUN_ID [-f] [--step STEP] [--timestamps]`. Without -f: the stored lines, exit 0.
 * With -f: stored then live lines (the gateway's SSE stream, resumed with Last-Event-ID if the
 * connection drops) until the run ends; returns the run's exit code.
 */
export async function logs(client: GatewayClient, runId: string, opts: LogsOptions): Promise<number> {
  const color = useColor();
  const print = (l: LogLine) => {
    if (opts.step && l.stepId !== opts.step) return;
    const tag = paint(`[${l.stepId} ${l.driver}]`, colorFor(l.stepId), color);
    const ts = opts.timestamps ? `${l.ts} ` : '';
    const text = l.stream === 'stderr' && color ? paint(l.line, 31, true) : l.line;
    progress.clear();
    process.stdout.write(`${ts}${tag} ${text}\n`);
    progress.redraw();
  };
  const progress = new Progress(client, runId, Boolean(process.stderr.isTTY) && opts.follow);

  if (!opts.follow) {
    const lines = await client.get<LogLine[]>(`/logs?runid=${encodeURIComponent(runId)}`);
    lines.forEach(print);
    return EXIT.ok;
  }
  progress.start();
  try {
    const end = await follow(client, runId, print);
    progress.stop();
    const run = await client.find<Run>(`/runs/${encodeURIComponent(runId)}`);
    // The run record may lag the end of its logs by a moment: time it from the end marker then.
    const tookMs = run?.durationMs ?? (run ? Date.parse(end.at) - Date.parse(run.startedAt ?? run.createdAt) : NaN);
    const took = Number.isFinite(tookMs) ? ` in ${formatDuration(tookMs)}` : '';
    const why = run?.message && end.status !== 'succeeded' ? `: ${run.message}` : '';
    process.stderr.write(`run ${runId} ${paint(end.status, STATUS_COLOR[end.status] ?? 0, useColor(process.stderr))}${took}${why}\n`);
    return exitCodeOf(end.status);
  } finally {
    progress.stop();
  }
}

const MAX_RECONNECTS = 20;

/** Follows the SSE stream to its `end` event; a dropped connection resumes after the last line seen. */
async function follow(client: GatewayClient, runId: string, onLine: (l: LogLine) => void): Promise<LogsEnd> {
  let lastId: string | undefined;
  for (let attempt = 0; attempt <= MAX_RECONNECTS; attempt++) {
    const res = await client.fetch(`/logs/pipeline/${encodeURIComponent(runId)}`, {
      headers: client.headers({ accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) }),
    });
    if (res.status !== 200 || !res.body) throw toGatewayError(res.status, await res.text(), `logs of run ${runId}`);
    try {
      for await (const e of readSse(res.body as unknown as AsyncIterable<Uint8Array>)) {
        if (e.id) lastId = e.id;
        if (e.event === 'log') onLine(JSON.parse(e.data) as LogLine);
        else if (e.event === 'end') return JSON.parse(e.data) as LogsEnd;
        else if (e.event === 'error') throw new CliError(`the gateway ended the log stream: ${(JSON.parse(e.data) as { message?: string }).message}`);
      }
    } catch (err) {
      if (err instanceof CliError) throw err;
      // The connection dropped mid-stream: resume below.
    }
    await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
  }
  throw new CliError(`lost the log stream of run ${runId} ${MAX_RECONNECTS} times; giving up`);
}

/** A one-line status on stderr while following on a terminal: the current step and elapsed time. */
class Progress {
  private timer?: NodeJS.Timeout;
  private text = '';
  private polling = false;

  constructor(
    private readonly client: GatewayClient,
    private readonly runId: string,
    private readonly enabled: boolean,
  ) {}

  start(): void {
    if (!this.enabled) return;
    const tick = async () => {
      if (this.polling) return;
      this.polling = true;
      try {
        const run = await this.client.find<Run>(`/runs/${encodeURIComponent(this.runId)}`);
        if (run && this.timer) {
          const since = run.startedAt ?? run.createdAt;
          this.clear();
          this.text = `» ${run.status} · step ${currentStep(run) ?? '-'} · ${formatDuration(Date.now() - Date.parse(since))}`;
          this.redraw();
        }
      } catch {
        // Progress is a nicety; the log stream reports real trouble.
      } finally {
        this.polling = false;
      }
    };
    this.timer = setInterval(() => void tick(), 1000);
    void tick();
  }

  clear(): void {
    if (this.enabled && this.text) process.stderr.write('\r\x1b[K');
  }

  redraw(): void {
    if (this.enabled && this.text) process.stderr.write(paint(this.text, 90, useColor(process.stderr)));
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
    this.text = '';
  }
}
