import type { IncomingMessage, ServerResponse } from 'node:http';
import { context, propagation, trace, ROOT_CONTEXT, SpanKind, SpanStatusCode, type Attributes, type Context, type Link, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
// The SDK and the exporter are loaded by startTracing only: a process without an endpoint is
// spared their memory (about 13 MB) and load time (about 80 ms).
import type { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import type { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import type { MsgHdrs } from '@nats-io/transport-node';

/** What tracing needs from the configuration (see libs/config: CONVEYOR_OTEL_*). */
export interface TracingConfig {
  /** The OTLP/HTTP endpoint: a base URL (`/v1/traces` is added) or the full traces URL. */
  endpoint: string;
  serviceName: string;
  /** Share of new traces kept (0..1); a trace started elsewhere keeps its own decision. */
  sampleRatio: number;
  /** How long finished spans wait to be sent in one batch. */
  exportDelayMs: number;
}

/** The W3C header that carries a span's context, on HTTP requests and on NATS step messages. */
export const TRACEPARENT = 'traceparent';

export { SpanKind, SpanStatusCode, type Span };

/**
 * Set by startTracing only: while it is undefined every helper below returns at its first line,
 * so a process without CONVEYOR_OTEL_ENDPOINT pays one comparison per call and nothing else.
 */
let tracer: Tracer | undefined;
let provider: BasicTracerProvider | undefined;
let contextManager: AsyncLocalStorageContextManager | undefined;
let w3c!: W3CTraceContextPropagator;

type Carrier = Record<string, string | string[] | undefined>;
const carrierGetter = {
  keys: (c: Carrier) => Object.keys(c),
  get: (c: Carrier, key: string) => c[key],
};

export function tracingOn(): boolean {
  return tracer !== undefined;
}

/**
 * Starts the SDK for this process when `config` is given: spans batched to the OTLP/HTTP
 * endpoint, the async-local context (so spans started inside a handler find their parent),
 * and the W3C propagator. Registered globally too, so a driver's own `@opentelemetry/api`
 * spans join the step's trace. Calling it again while running does nothing.
 */
export function startTracing(config: TracingConfig | undefined): boolean {
  if (!config || provider) return Boolean(provider);
  const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks') as typeof import('@opentelemetry/context-async-hooks');
  const { W3CTraceContextPropagator } = require('@opentelemetry/core') as typeof import('@opentelemetry/core');
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
  const { resourceFromAttributes } = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
  const { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  w3c = new W3CTraceContextPropagator();
  const exporter = new OTLPTraceExporter({ url: tracesUrl(config.endpoint) });
  provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
    // Spans that cannot be sent (the collector is down) are dropped by the processor: tracing
    // never holds up or fails a step.
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: config.exportDelayMs })],
  });
  contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(w3c);
  tracer = provider.getTracer('conveyor');
  return true;
}

/**
 * Sends what is batched and stops the SDK (at a process's shutdown); safe to call when off.
 * Waits at most `timeoutMs`: a receiver that does not answer must not hold up an exit.
 */
export async function stopTracing(timeoutMs = 5_000): Promise<void> {
  const p = provider;
  if (!p) return;
  tracer = undefined;
  provider = undefined;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.shutdown().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);
  contextManager?.disable();
  contextManager = undefined;
  trace.disable();
  context.disable();
  propagation.disable();
}

/** `endpoint` as OTEL_EXPORTER_OTLP_ENDPOINT reads it: a base URL gets the traces path. */
export function tracesUrl(endpoint: string): string {
  const url = endpoint.replace(/\/+$/, '');
  return url.endsWith('/v1/traces') ? url : `${url}/v1/traces`;
}

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** Default: the active context (the span running now, if any). */
  parent?: Context;
  links?: Link[];
}

/** A span, or undefined when tracing is off (every helper takes undefined and does nothing). */
export function startSpan(name: string, opts: SpanOptions = {}): Span | undefined {
  if (!tracer) return undefined;
  return tracer.startSpan(name, { kind: opts.kind, attributes: opts.attributes, links: opts.links }, opts.parent ?? context.active());
}

/**
 * A span for work read from NATS (a step's message): parented on the run's own `traceparent`
 * (kept in the message, so every step of a run is a child of its start whichever agent wrote
 * the work), and linked to the span that wrote the message (its `traceparent` header, e.g. the
 * previous step's hand-off). Undefined when off.
 */
export function startConsumerSpan(name: string, runTraceparent: string | undefined, headers: MsgHdrs | undefined, attributes: Attributes): Span | undefined {
  if (!tracer) return undefined;
  const writer = spanContextOf(headers);
  const parent = contextOf(runTraceparent) ?? (writer ? trace.setSpanContext(ROOT_CONTEXT, writer) : ROOT_CONTEXT);
  const parentId = trace.getSpanContext(parent)?.spanId;
  const links = writer && writer.spanId !== parentId ? [{ context: writer }] : [];
  return tracer.startSpan(name, { kind: SpanKind.CONSUMER, attributes, links }, parent);
}

/** Runs `fn` with `span` as the active span (its children and log lines find it). */
export function withSpan<T>(span: Span | undefined, fn: () => T): T {
  if (!span) return fn();
  return context.with(trace.setSpan(context.active(), span), fn);
}

/** Ends a span; a `failure` message marks it as an error. */
export function endSpan(span: Span | undefined, failure?: string): void {
  if (!span) return;
  if (failure !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: failure });
  span.end();
}

/** The `traceparent` of `span`, or of the active span; undefined when off or there is none. */
export function traceparentOf(span?: Span): string | undefined {
  if (!tracer) return undefined;
  const ctx = span ? trace.setSpan(ROOT_CONTEXT, span) : context.active();
  if (!trace.getSpanContext(ctx)) return undefined;
  const carrier: Record<string, string> = {};
  w3c.inject(ctx, carrier, { set: (c, k, v) => (c[k] = v) });
  return carrier[TRACEPARENT];
}

/** The context a `traceparent` value names (to parent a span on it); undefined for none or a malformed one. */
export function contextOf(traceparent: string | undefined): Context | undefined {
  // Read from stored messages: anything but a string is ignored, never an error.
  if (!tracer || typeof traceparent !== 'string') return undefined;
  const ctx = w3c.extract(ROOT_CONTEXT, { [TRACEPARENT]: traceparent }, carrierGetter);
  return trace.getSpanContext(ctx) ? ctx : undefined;
}

/** The span context a NATS message's `traceparent` header names, if any (e.g. to link to its writer). */
export function spanContextOf(headers: MsgHdrs | undefined): SpanContext | undefined {
  if (!tracer || !headers?.has(TRACEPARENT)) return undefined;
  const ctx = contextOf(headers.get(TRACEPARENT));
  return ctx && trace.getSpanContext(ctx);
}

/**
 * Sets a NATS message's `traceparent`: the active span's (the writer's, e.g. a hand-off), else
 * `fallback` (the run's own, kept in its step messages). Nothing when off.
 */
export function injectTraceparent(headers: MsgHdrs, fallback?: string): void {
  if (!tracer) return;
  const value = traceparentOf() ?? fallback;
  if (value) headers.set(TRACEPARENT, value);
}

/**
 * `traceId` and `spanId` of the active span, for log lines; an empty object when off or outside a
 * span. A new object each time: pino's mixin merges the line's fields into it.
 */
export function logFields(): Record<string, string> {
  if (!tracer) return {};
  const sc = trace.getSpanContext(context.active());
  return sc ? { traceId: sc.traceId, spanId: sc.spanId } : {};
}

/** Methods whose requests may start runs (POST /resources, PUT, hooks, re-runs, approvals); reads are not traced. */
const TRACED_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

type Request = IncomingMessage & { originalUrl?: string; route?: { path?: unknown }; baseUrl?: string };

/**
 * Express middleware: a server span per changing request, parented on the caller's
 * `traceparent` when it sends one, active while the request is handled. Mount it after the body
 * parsers: a stream's events run in the context the socket was made in, so a span made active
 * before the body is read would not reach the handler.
 */
export function httpServerSpans(): (req: Request, res: ServerResponse, next: () => void) => void {
  return (req, res, next) => {
    if (!tracer || !TRACED_METHODS.has(req.method ?? '')) return next();
    const method = req.method!;
    const parent = w3c.extract(ROOT_CONTEXT, req.headers as Carrier, carrierGetter);
    const path = (req.originalUrl ?? req.url ?? '').split('?')[0];
    const span = tracer.startSpan(method, { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': path } }, parent);
    res.once('close', () => {
      // The route's pattern (e.g. /hooks/:trigger) once the router matched it; the path otherwise.
      const route = typeof req.route?.path === 'string' ? `${req.baseUrl ?? ''}${req.route.path}` : undefined;
      span.updateName(`${method} ${route ?? path}`);
      if (route) span.setAttribute('http.route', route);
      span.setAttribute('http.response.status_code', res.statusCode);
      endSpan(span, res.statusCode >= 500 ? `HTTP ${res.statusCode}` : undefined);
    });
    context.with(trace.setSpan(parent, span), next);
  };
}
