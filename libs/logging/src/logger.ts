import type { LoggerService, LogLevel } from '@nestjs/common';
import pino, { type DestinationStream, type Level, type Logger } from 'pino';
import { logFields } from '@conveyor/tracing';

export interface LoggingOptions {
  /** The app, on every line (`app`). */
  name: string;
  /** Pretty lines instead of JSON; default: when stdout is a terminal. */
  pretty?: boolean;
  /** Default: CONVEYOR_LOG_LEVEL or `info`. */
  level?: string;
  /** Where lines go; default stdout (tests pass a stream). */
  destination?: DestinationStream;
  env?: Record<string, string | undefined>;
}

/**
 * A pino logger for an app: JSON lines (one object per line, for log shippers) when stdout is
 * not a terminal, coloured readable lines on a terminal (plain with NO_COLOR).
 */
export function createLogger(opts: LoggingOptions): Logger {
  const env = opts.env ?? process.env;
  const level = opts.level ?? (env.CONVEYOR_LOG_LEVEL?.trim() || 'info');
  const pretty = opts.pretty ?? Boolean(process.stdout.isTTY);
  const base = {
    level,
    base: { app: opts.name, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // "level":"info" rather than 30: readable without a lookup table.
    formatters: { level: (label: string) => ({ level: label }) },
    // `traceId` and `spanId` of the span a line is written in (a request, a step), when tracing is on.
    mixin: logFields,
  };
  if (pretty && !opts.destination) {
    // Loaded only on a terminal; synchronous, so nothing is lost when the process exits.
    const { PinoPretty } = require('pino-pretty') as typeof import('pino-pretty');
    return pino(base, PinoPretty({
      colorize: !env.NO_COLOR && Boolean(process.stdout.isTTY),
      sync: true,
      singleLine: true,
      ignore: 'pid,hostname,app,context',
      messageFormat: '{app} [{context}] {msg}',
      translateTime: 'SYS:HH:MM:ss.l',
    }));
  }
  return pino(base, opts.destination ?? pino.destination({ dest: 1, sync: true }));
}

/** `run <id>` and `step <id>` in a message: the fields a line about a run carries. */
const RUN_IN_TEXT = /\brun ([0-9a-z]{26})\b/;
const STEP_IN_TEXT = /\bstep "?([A-Za-z0-9_-]{1,63})"?/;

/** The fields of a line that concerns a run: from an object message, or found in the text. */
export function runFields(message: unknown): { runId?: string; stepId?: string } {
  if (message && typeof message === 'object') {
    const m = message as Record<string, unknown>;
    return {
      ...(typeof m.runId === 'string' ? { runId: m.runId } : {}),
      ...(typeof m.stepId === 'string' ? { stepId: m.stepId } : {}),
    };
  }
  if (typeof message !== 'string') return {};
  const run = RUN_IN_TEXT.exec(message)?.[1];
  if (!run) return {};
  const step = STEP_IN_TEXT.exec(message)?.[1];
  return { runId: run, ...(step ? { stepId: step } : {}) };
}

const LEVELS: Record<LogLevel, Level> = { fatal: 'fatal', error: 'error', warn: 'warn', log: 'info', debug: 'debug', verbose: 'trace' };

/**
 * Nest's logger on pino: `Logger.log('...', 'Context')` becomes `{level, time, app, context,
 * msg, runId?, stepId?}`. An object message (`{msg, runId, stepId, ...}`) is merged into the line.
 */
export class PinoNestLogger implements LoggerService {
  constructor(readonly pino: Logger) {}

  log(message: unknown, ...params: unknown[]): void {
    this.write('log', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.write('verbose', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  setLogLevels(levels: LogLevel[]): void {
    const order: LogLevel[] = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'];
    const lowest = order.find((l) => levels.includes(l));
    if (lowest) this.pino.level = LEVELS[lowest];
  }

  private write(level: LogLevel, message: unknown, params: unknown[]): void {
    // Nest passes the context last; error() may pass a stack before it.
    const rest = [...params];
    const context = rest.length && typeof rest[rest.length - 1] === 'string' ? (rest.pop() as string) : undefined;
    const stack = level === 'error' && typeof rest[0] === 'string' ? (rest.shift() as string) : undefined;
    const fields: Record<string, unknown> = { ...(context ? { context } : {}), ...runFields(message) };
    if (stack) fields.stack = stack;
    if (message instanceof Error) {
      this.pino[LEVELS[level]]({ ...fields, err: message }, message.message);
    } else if (message && typeof message === 'object') {
      const { msg, message: text, ...more } = message as Record<string, unknown>;
      this.pino[LEVELS[level]]({ ...more, ...fields }, String(msg ?? text ?? ''));
    } else {
      this.pino[LEVELS[level]](fields, String(message));
    }
  }
}

/** The one helper apps use: the Nest logger for app `name` (pass it as `logger` to NestFactory). */
export function nestLogger(name: string, opts: Omit<LoggingOptions, 'name'> = {}): PinoNestLogger {
  return new PinoNestLogger(createLogger({ name, ...opts }));
}
