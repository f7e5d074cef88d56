import { metricsText } from './step-metrics';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthReport {
  ok: boolean;
  [key: string]: unknown;
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * A tiny HTTP server for a process that has no HTTP API of its own (a driver agent):
 * `GET /metrics` (Prometheus text of `registry`) and `GET /health` (200 while `health()`
 * says ok, else 503). Bound to `host` (default 127.0.0.1); port 0 picks a free one.
 */
export async function startMetricsServer(opts: { port: number; host?: string; registry: Registry; health: () => HealthReport | Promise<HealthReport> }): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = async () => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' }).end(JSON.stringify({ statusCode: 405, error: 'Method Not Allowed', message: `${req.method} is not allowed` }));
      } else if (path === '/metrics') {
        const text = await metricsText(opts.registry);
        res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text);
      } else if (path === '/health') {
        const report = await opts.health();
        res.writeHead(report.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: report.ok ? 'ok' : 'unavailable', ...report }));
      } else {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ statusCode: 404, error: 'Not Found', message: `${path}: try /metrics or /health` }));
      }
    };
    answer().catch((err: Error) => {
      if (!res.headersSent) res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ statusCode: 503, error: 'Service Unavailable', message: err.message }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => resolve());
  });
  // A scrape must not keep a stopping agent alive.
  server.unref();
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
