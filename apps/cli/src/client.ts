import { CliError } from './errors';

/** The gateway's error JSON: `{statusCode, error, message, details?}`. */
interface HttpErrorBody {
  statusCode?: number;
  error?: string;
  message?: string | string[];
  details?: string[];
}

/** An answer of the gateway that was not 2xx; `details` names each failing field of a 400. */
export class GatewayError extends CliError {
  constructor(
    readonly status: number,
    readonly gatewayMessage: string,
    readonly details: string[],
    what: string,
  ) {
    super(`${what}: ${status} ${gatewayMessage}`);
  }
}

/** A small JSON client for the gateway: CONVEYOR_URL, and CONVEYOR_TOKEN as a bearer token. */
export class GatewayClient {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly token?: string,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): GatewayClient {
    const url = env.CONVEYOR_URL?.trim() || 'http://127.0.0.1:8080';
    if (!/^https?:\/\/[^\s]+$/.test(url)) throw new CliError(`CONVEYOR_URL=${url}: must be an http:// or https:// URL`);
    return new GatewayClient(url, env.CONVEYOR_TOKEN?.trim() || undefined);
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...extra };
  }

  /** Sends a request; returns `undefined` for a 404 when `allow404`, throws GatewayError for any other non-2xx. */
  async request<T>(method: string, path: string, body?: unknown, opts: { allow404?: boolean } = {}): Promise<T | undefined> {
    const res = await this.fetch(path, {
      method,
      headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status === 404 && opts.allow404) return undefined;
    if (res.status >= 300) throw toGatewayError(res.status, text, `${method} ${path}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async get<T>(path: string): Promise<T> {
    return (await this.request<T>('GET', path)) as T;
  }

  async find<T>(path: string): Promise<T | undefined> {
    return this.request<T>('GET', path, undefined, { allow404: true });
  }

  /** fetch with the gateway's address in the error when it cannot be reached. */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await fetch(this.baseUrl + path, init);
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach the gateway at ${this.baseUrl} (CONVEYOR_URL): ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
  }
}

export function toGatewayError(status: number, text: string, what: string): GatewayError {
  let body: HttpErrorBody = {};
  try {
    body = JSON.parse(text) as HttpErrorBody;
  } catch {
    body = { message: text.trim().slice(0, 500) || undefined };
  }
  const message = Array.isArray(body.message) ? body.message.join('; ') : body.message ?? body.error ?? 'no message';
  return new GatewayError(status, message, Array.isArray(body.details) ? body.details : [], what);
}
