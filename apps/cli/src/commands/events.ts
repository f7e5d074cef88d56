import { connect, type Msg } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { Headers as H, RUN_ID_PATTERN, Subjects, decodeRunRecord, type LogLine, type StepEnded } from '@conveyor/contracts';
import { loadConfig, parseDuration } from '@conveyor/config';
import { connectionOptions } from '@conveyor/jetstream';
import { CliError, EXIT } from '../errors';
import { colorFor, paint, STATUS_COLOR, useColor } from '../output';

export interface EventsOptions {
  run?: string;
  count?: number;
  timeout?: string;
}

/** What `events` reads a message as: subject, headers and payload. */
interface Message {
  subject: string;
  data: Uint8Array;
  header(name: string): string | undefined;
}

/**
 * `conveyor events [--run ID] [--count N] [--timeout 30s]`: one readable line per message, like
 * `nats sub`, for machines without the NATS CLI. Without --run: everything under `<prefix>.>`
 * as it happens (core NATS). With --run: that run's log, stored records first and then live
 * ones, in stream order (an ordered JetStream consumer on `<prefix>.steps.<run>.>`), ending
 * after the run's end. Returns 1 when --count was not reached before --timeout.
 */
export async function events(opts: EventsOptions): Promise<number> {
  const config = loadConfig(process.env, { name: 'conveyor-cli' });
  const subjects = new Subjects(config.prefix);
  if (opts.run !== undefined && !RUN_ID_PATTERN.test(opts.run)) throw new CliError(`--run ${opts.run}: not a run id`);
  const timeoutMs = opts.timeout === undefined ? undefined : parseDuration(opts.timeout);
  if (opts.timeout !== undefined && (timeoutMs === undefined || timeoutMs <= 0)) throw new CliError(`--timeout ${opts.timeout}: use a duration like 30s or 2m`);
  const limit = opts.count ?? Infinity;

  const nc = await connect({ ...connectionOptions(config), waitOnFirstConnect: false, maxReconnectAttempts: 10 }).catch((err: Error) => {
    throw new CliError(`cannot connect to NATS at ${config.nats.servers.join(',')} (CONVEYOR_NATS_URL): ${err.message}`);
  });
  const color = useColor();
  let seen = 0;
  let timedOut = false;
  const stops: Array<() => void> = [];
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    stops.forEach((s) => s());
  }, timeoutMs);
  const stopOnSignal = () => stops.forEach((s) => s());
  process.once('SIGINT', stopOnSignal);
  try {
    if (opts.run === undefined) {
      const sub = nc.subscribe(`${subjects.prefix}.>`);
      stops.push(() => sub.unsubscribe());
      for await (const m of sub) {
        process.stdout.write(describeMessage(subjects, fromCore(m), color) + '\n');
        if (++seen >= limit) break;
      }
    } else {
      const js = jetstream(nc);
      const consumer = await js.consumers.get(subjects.runsStream, { filter_subjects: subjects.runLog(opts.run), deliver_policy: DeliverPolicy.All });
      const messages = await consumer.consume({ max_messages: 256 });
      stops.push(() => void messages.stop());
      if (timedOut) messages.stop();
      for await (const m of messages) {
        process.stdout.write(describeMessage(subjects, { subject: m.subject, data: m.data, header: (n) => m.headers?.get(n) || undefined }, color) + '\n');
        if (++seen >= limit || m.subject === subjects.runEnd(opts.run)) break;
      }
      await messages.close().catch(() => undefined);
    }
  } finally {
    if (timer) clearTimeout(timer);
    process.off('SIGINT', stopOnSignal);
    await nc.close().catch(() => undefined);
  }
  return timedOut && opts.count !== undefined && seen < opts.count ? EXIT.failed : EXIT.ok;
}

function fromCore(m: Msg): Message {
  return { subject: m.subject, data: m.data, header: (n) => m.headers?.get(n) || undefined };
}

function json<T>(data: Uint8Array): T | undefined {
  try {
    return JSON.parse(new TextDecoder().decode(data)) as T;
  } catch {
    return undefined;
  }
}

function clock(iso?: string): string {
  const d = iso ? new Date(iso) : new Date();
  return (Number.isNaN(d.getTime()) ? new Date() : d).toISOString().slice(11, 23);
}

/** One line per message: time, what it is, the run, and the few fields that matter. */
export function describeMessage(subjects: Subjects, m: Message, color: boolean): string {
  const rest = m.subject.startsWith(subjects.prefix + '.') ? m.subject.slice(subjects.prefix.length + 1) : m.subject;
  const [area, ...tokens] = rest.split('.');
  switch (area) {
    case 'steps': {
      // A record of a run's log: one line, the facts it states in order.
      const where = subjects.parseRunRecord(m.subject);
      const decoded = where ? decodeRunRecord(where, m.data) : undefined;
      if (!decoded?.ok) break;
      const r = decoded.value;
      const step = (id: string, driver?: string) => paint(`step ${id}${driver ? ` (${driver})` : ''}`, colorFor(id), color);
      const status = (k: string) => paint(k, STATUS_COLOR[k] ?? 0, color);
      const bits = (b: Record<string, string | number | undefined>) => {
        const out = Object.entries(b).filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${k}=${v}`).join(' ');
        return out ? `  ${out}` : '';
      };
      const ended = (f: StepEnded) =>
        `${step(f.stepId, f.driver)} ${status(f.status)}${bits({ attempt: f.attempt || undefined, agent: f.agent, took: f.durationMs !== undefined ? `${f.durationMs}ms` : undefined })}${f.message ? `  ${f.message}` : ''}`;
      const line = (at: string, runId: string, what: string[]) => `${clock(at)}  run    ${runId}  ${what.join('; ')}`;
      if (r.kind === 'work') {
        const s = r.msg.pipeline.steps[r.msg.stepIndex];
        const next = `${step(s.id, s.driver)} next${r.msg.machine ? ` on ${r.msg.machine}` : ''}${r.msg.mode === 'cleanup' ? ' (cleanup)' : ''}`;
        return line(r.msg.from?.at ?? r.msg.createdAt, r.msg.runId, [r.msg.from ? ended(r.msg.from) : status('queued'), next]);
      }
      if (r.kind === 'end') {
        return line(r.end.at, r.end.runId, [...(r.end.from ? [ended(r.end.from)] : []), `run ${status(r.end.status)}${r.end.message ? `  ${r.end.message}` : ''}`]);
      }
      if (r.kind === 'done') return line(r.done.at, r.done.runId, [ended(r.done.from)]);
      const e = r.record;
      const kind = e.kind === 'claim' ? 'started' : e.kind === 'retry' ? 'retrying' : 'released';
      return line(e.at, e.runId, [`${step(e.stepId, m.header(H.Driver))} ${status(kind)}${bits({ attempt: e.attempt, agent: e.agent, took: e.durationMs !== undefined ? `${e.durationMs}ms` : undefined, 'retry-in': e.retryInMs !== undefined ? `${e.retryInMs}ms` : undefined })}${e.message ? `  ${e.message}` : ''}`]);
    }
    case 'logs': {
      if (tokens[1] === 'end') return `${clock()}  logs   ${tokens[0]}  end of logs`;
      const l = json<LogLine>(m.data);
      if (!l) break;
      return `${clock(l.ts)}  log    ${l.runId}  ${paint(`[${l.stepId} ${l.driver}]`, colorFor(l.stepId), color)} ${l.line}`;
    }
    case 'control':
      return `${clock()}  ctl    ${tokens[0]}  ${tokens.slice(1).join('.')}`;
    case 'dlq':
      return `${clock()}  dlq    ${tokens.join('.')}  ${m.header(H.Reason) ?? json<{ reason?: string }>(m.data)?.reason ?? ''}`;
  }
  return `${clock()}  ${m.subject}  ${m.data.length} bytes`;
}
