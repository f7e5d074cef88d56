import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { headers } from '@nats-io/transport-node';
import { contextOf, endSpan, injectTraceparent, logFields, spanContextOf, startSpan, startTracing, stopTracing, traceparentOf, tracesUrl, tracingOn, withSpan, TRACEPARENT } from './tracing';

/** A real OTLP/HTTP receiver: the JSON bodies POSTed to /v1/traces. */
function receiver(): Promise<{ server: Server; url: string; bodies: unknown[] }> {
  const bodies: unknown[] = [];
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      if (req.url === '/v1/traces') bodies.push(JSON.parse(data));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies })));
}

describe('tracing', () => {
  afterEach(() => stopTracing());

  it('does nothing while off', () => {
    expect(tracingOn()).toBe(false);
    expect(startSpan('x')).toBeUndefined();
    expect(traceparentOf()).toBeUndefined();
    expect(logFields()).toEqual({});
    const h = headers();
    injectTraceparent(h, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    expect(h.has(TRACEPARENT)).toBe(false);
    expect(withSpan(undefined, () => 7)).toBe(7);
  });

  it('adds the traces path to a base endpoint', () => {
    expect(tracesUrl('http://h:4318')).toBe('http://h:4318/v1/traces');
    expect(tracesUrl('http://h:4318/v1/traces')).toBe('http://h:4318/v1/traces');
  });

  it('parents spans across a traceparent, carries it in NATS headers and log fields, and exports them as OTLP JSON', async () => {
    const r = await receiver();
    try {
      expect(startTracing({ endpoint: r.url, serviceName: 'unit', sampleRatio: 1, exportDelayMs: 50 })).toBe(true);
      const root = startSpan('root')!;
      const tp = traceparentOf(root)!;
      expect(tp).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      // Another process parents its span on the value it read.
      const child = startSpan('child', { parent: contextOf(tp) })!;
      const h = headers();
      withSpan(child, () => {
        injectTraceparent(h);
        expect(logFields()).toEqual({ traceId: child.spanContext().traceId, spanId: child.spanContext().spanId });
      });
      expect(spanContextOf(h)).toMatchObject({ traceId: root.spanContext().traceId, spanId: child.spanContext().spanId });
      expect(contextOf('garbage')).toBeUndefined();
      endSpan(child, 'it broke');
      endSpan(root);
      // Sent in a batch within the export delay.
      for (let i = 0; i < 100 && !r.bodies.length; i++) await new Promise((res) => setTimeout(res, 20));
      const spans = r.bodies.flatMap((b) => (b as { resourceSpans: { scopeSpans: { spans: { name: string; traceId: string; spanId: string; parentSpanId?: string; status: { code: number } }[] }[] }[] }).resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((s) => s.spans)));
      const byName = Object.fromEntries(spans.map((s) => [s.name, s]));
      expect(byName.child.traceId).toBe(root.spanContext().traceId);
      expect(byName.child.parentSpanId).toBe(root.spanContext().spanId);
      expect(byName.child.status.code).toBe(2);
    } finally {
      r.server.close();
    }
  });
});

describe('tracing shutdown', () => {
  it('does not wait longer than its bound for a receiver that never answers', async () => {
    // Takes the connection and never answers it.
    const server = createServer(() => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      startTracing({ endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, serviceName: 'unit', sampleRatio: 1, exportDelayMs: 60_000 });
      endSpan(startSpan('lost'));
      const started = Date.now();
      await stopTracing(300);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(tracingOn()).toBe(false);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
