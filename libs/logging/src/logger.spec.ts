import { Writable } from 'node:stream';
import { endSpan, startSpan, startTracing, stopTracing, withSpan } from '@conveyor/tracing';
import { createLogger, PinoNestLogger, runFields } from './logger';

function capture(): { lines: () => Array<Record<string, unknown>>; logger: PinoNestLogger } {
  let out = '';
  const destination = new Writable({
    write(chunk, _enc, cb) {
      out += chunk;
      cb();
    },
  });
  const logger = new PinoNestLogger(createLogger({ name: 'test-app', destination, level: 'info', env: {} }));
  return { logger, lines: () => out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('logging', () => {
  it('writes one JSON object per line with app, context and level', () => {
    const { logger, lines } = capture();
    logger.log('listening on http://127.0.0.1:8080', 'Gateway');
    logger.warn('quoted "text" survives');
    const [a, b] = lines();
    expect(a).toMatchObject({ level: 'info', app: 'test-app', context: 'Gateway', msg: 'listening on http://127.0.0.1:8080' });
    expect(typeof a.time).toBe('string');
    expect(b).toMatchObject({ level: 'warn', msg: 'quoted "text" survives' });
    expect(b.context).toBeUndefined();
  });

  it('puts the run id and step on lines about a run', () => {
    const { logger, lines } = capture();
    logger.warn('run 01jabcdefghjkmnpqrstvwxyz0 failed: step build timed out', 'Watchdog');
    logger.log({ msg: 'handing off', runId: '01jabcdefghjkmnpqrstvwxyz1', stepId: 's2', attempt: 2 }, 'StepRunner');
    logger.log('no run here');
    const [a, b, c] = lines();
    expect(a).toMatchObject({ runId: '01jabcdefghjkmnpqrstvwxyz0', stepId: 'build', context: 'Watchdog' });
    expect(b).toMatchObject({ msg: 'handing off', runId: '01jabcdefghjkmnpqrstvwxyz1', stepId: 's2', attempt: 2 });
    expect(c.runId).toBeUndefined();
  });

  it('keeps the stack of an error, and drops debug below the level', () => {
    const { logger, lines } = capture();
    logger.debug('not shown');
    logger.error('it broke', 'Error: it broke\n    at somewhere', 'Projector');
    const out = lines();
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ level: 'error', msg: 'it broke', context: 'Projector', stack: 'Error: it broke\n    at somewhere' });
  });

  it('runFields reads object fields or the text', () => {
    expect(runFields('run 01jabcdefghjkmnpqrstvwxyz0: cancelled, aborting 1 step(s)')).toEqual({ runId: '01jabcdefghjkmnpqrstvwxyz0' });
    expect(runFields({ runId: 'x' })).toEqual({ runId: 'x' });
    expect(runFields(42)).toEqual({});
  });

  it('adds the trace and span ids of the span a line is written in, only when tracing is on', async () => {
    const { logger, lines } = capture();
    logger.log('before tracing');
    // An endpoint nobody listens on: spans are lost, lines still carry their ids.
    startTracing({ endpoint: 'http://127.0.0.1:9', serviceName: 'unit', sampleRatio: 1, exportDelayMs: 60_000 });
    try {
      const span = startSpan('step')!;
      withSpan(span, () => logger.log('inside a span'));
      logger.log('outside');
      endSpan(span);
      const [off, inside, outside] = lines();
      expect(off.traceId).toBeUndefined();
      expect(inside).toMatchObject({ traceId: span.spanContext().traceId, spanId: span.spanContext().spanId });
      expect(outside.traceId).toBeUndefined();
    } finally {
      await stopTracing();
    }
  });
});
