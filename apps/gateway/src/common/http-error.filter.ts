import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { errors as natsErrors } from '@nats-io/transport-node';
import { JetStreamApiError, JetStreamError } from '@nats-io/jetstream';
import { ConflictError, NotFoundError } from '@conveyor/store';

/** NATS being away (restarting, unreachable, no JetStream) is not the client's fault, nor a bug: 503. */
function isNatsUnavailable(err: unknown): boolean {
  return (
    err instanceof natsErrors.TimeoutError ||
    err instanceof natsErrors.RequestError ||
    err instanceof natsErrors.NoRespondersError ||
    err instanceof natsErrors.ConnectionError ||
    err instanceof natsErrors.ClosedConnectionError ||
    err instanceof natsErrors.DrainingConnectionError ||
    err instanceof JetStreamError ||
    (err instanceof JetStreamApiError && err.code === 503)
  );
}

export interface HttpErrorBody {
  statusCode: number;
  error: string;
  message: string;
  /** Every failing field, when the body failed validation. */
  details?: string[];
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

const reason = (status: number): string => REASONS[status] ?? (HttpStatus[status] ?? 'Error').toString();

/** Errors thrown by body-parser (and other http-errors users) carry a status and say whether the message is safe to show. */
interface HttpLibError {
  status?: number;
  statusCode?: number;
  expose?: boolean;
  type?: string;
  limit?: number;
  message: string;
}

/**
 * Every error becomes JSON `{statusCode, error, message}`. Only errors that are not the
 * client's fault are 5xx, and those are logged with their stack; their text is not shown.
 */
export function toHttpError(err: unknown): HttpErrorBody {
  if (err instanceof HttpException) {
    const status = err.getStatus();
    const res = err.getResponse();
    if (typeof res === 'string') return { statusCode: status, error: reason(status), message: res };
    const body = res as { message?: unknown; error?: unknown; details?: unknown };
    const raw = body.message ?? err.message;
    const details = Array.isArray(body.details) ? body.details.map(String) : Array.isArray(raw) ? raw.map(String) : undefined;
    const message = Array.isArray(raw) ? raw.join('; ') : String(raw);
    return { statusCode: status, error: reason(status), message, ...(details ? { details } : {}) };
  }
  if (err instanceof NotFoundError) return { statusCode: 404, error: reason(404), message: err.message };
  if (err instanceof ConflictError) return { statusCode: 409, error: reason(409), message: err.message };
  if (isNatsUnavailable(err)) {
    return { statusCode: 503, error: reason(503), message: `NATS did not answer (${(err as Error).message}); if this request changes something, read it back before retrying` };
  }
  const lib = err as HttpLibError;
  if (lib && typeof lib === 'object') {
    if (lib.type === 'entity.too.large') {
      return { statusCode: 413, error: reason(413), message: `request body is larger than the limit of ${lib.limit} bytes` };
    }
    if (lib.type === 'entity.parse.failed' || err instanceof SyntaxError) {
      return { statusCode: 400, error: reason(400), message: `request body is not valid JSON: ${lib.message}` };
    }
    const status = lib.status ?? lib.statusCode;
    if (lib.expose && typeof status === 'number' && status >= 400 && status < 500) {
      return { statusCode: status, error: reason(status), message: lib.message };
    }
  }
  return { statusCode: 500, error: reason(500), message: 'internal error; see the gateway log' };
}

@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  private readonly log = new Logger('HttpError');

  catch(err: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const body = toHttpError(err);
    if (body.statusCode === 500) this.log.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    else if (body.statusCode >= 500) this.log.warn(body.message);
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(body.statusCode).json(body);
  }
}
