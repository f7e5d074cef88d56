import { Headers, PROTOCOL_VERSION, Subjects, newRunId, type LogLine, type StepMessage } from '@conveyor/contracts';
import { planTransition, stepDone, stepEnded, stepHeaderValues } from '@conveyor/runs';
import { WireValidator, wireSchemaOf } from './wire-schemas';

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const s = new Subjects();
const validator = new WireValidator(s);

function firstWork(): StepMessage {
  return {
    v: 1,
    runId: newRunId(),
    pipeline: { name: 'p', resource: 'thing', steps: [{ id: 'a', name: 'A', driver: 'alpha' }, { id: 'b', name: 'B', driver: 'beta', always: true }] },
    resource: { type: 'thing', name: 'x', version: 1, spec: { repository: 'file:///r' }, metadata: {} },
    stepIndex: 0,
    mode: 'normal',
    outputs: {},
    createdAt: new Date().toISOString(),
  };
}

/** A step message's headers, as RunLog writes them. */
const headersOf = (msg: StepMessage) => (name: string) => stepHeaderValues(msg)[name];

describe('wireSchemaOf', () => {
  const run = newRunId();
  it.each<[string, string | undefined]>([
    [s.work(run, 'a', 'alpha', 'm1'), 'step-message'],
    [s.stepRecord(run, 'a', 'retry'), 'step-record'],
    [s.stepRecord(run, 'a', 'release'), 'step-record'],
    [s.logsEnd(run), 'logs-end'],
    ['$JS.API.STREAM.INFO.CONVEYOR_RUNS', undefined],
    ['_INBOX.abc', undefined],
    [`$KV.${s.bucket('runs')}.${run}`, undefined],
    ['conveyor.logs.x', undefined],
  ])('%s: %s', (subject, schema) => {
    expect(wireSchemaOf(s, subject)).toBe(schema);
  });
});

describe('WireValidator', () => {
  it('knows every schema', () => {
    expect(validator.names.sort()).toEqual(['agent-info', 'cancel-signal', 'cancels-entry', 'dead-letter', 'log-line', 'logs-end', 'report-job', 'run-end', 'schedule-tick', 'step-done', 'step-message', 'step-record']);
  });

  it('passes the records the run model writes: work, its hand-off, a graph step\'s end and the run\'s end', () => {
    const msg = firstWork();
    expect(validator.check(s.work(msg.runId, 'a', 'alpha'), enc(msg), headersOf(msg))).toBeUndefined();
    const by = { attempt: 1, agent: 'agent-1', machine: 'm1', durationMs: 12, at: new Date().toISOString() };
    const failed = planTransition(msg, { status: 'failed', output: { success: false, message: 'boom', agent: 'agent-1', machine: 'm1' } }, by);
    expect(failed.kind).toBe('work');
    if (failed.kind !== 'work') return;
    expect(validator.check(s.work(msg.runId, 'b', 'beta'), enc(failed.msg), headersOf(failed.msg))).toBeUndefined();
    const end = planTransition(failed.msg, { status: 'succeeded', output: { success: true, data: { stopped: true } } }, by);
    expect(end.kind).toBe('end');
    if (end.kind !== 'end') return;
    const protocol = (name: string) => (name === Headers.Protocol ? PROTOCOL_VERSION : undefined);
    expect(validator.check(s.runEnd(msg.runId), enc(end.end), protocol)).toBeUndefined();
    const done = stepDone(msg.runId, stepEnded(msg, { status: 'succeeded', output: { success: true } }, by), { pin: 'm1' });
    expect(validator.check(s.stepRecord(msg.runId, 'a', 'done'), enc(done), protocol)).toBeUndefined();
  });

  it('names the field a message has that its type does not', () => {
    const line: LogLine = { runId: newRunId(), stepId: 'a', driver: 'alpha', attempt: 1, seq: 1, ts: new Date().toISOString(), stream: 'stdout', line: 'hi' };
    expect(validator.check(s.log(line.runId, 'alpha', 'a'), enc(line))).toBeUndefined();
    expect(validator.check(s.log(line.runId, 'alpha', 'a'), enc({ ...line, level: 'info' }))?.problem).toBe('/ must NOT have additional properties (level)');
    expect(validator.check(s.log(line.runId, 'alpha', 'a'), enc({ ...line, ts: 'yesterday' }))?.problem).toBe('/ts must match format "date-time"');
  });

  it('refuses work without the protocol header, of another major, or for another step than its subject names', () => {
    const msg = firstWork();
    const subject = s.work(msg.runId, 'a', 'alpha');
    expect(validator.check(subject, enc(msg))?.problem).toBe('no Conveyor-Protocol header');
    const v2 = (name: string) => (name === Headers.Protocol ? '2.0' : headersOf(msg)(name));
    expect(validator.check(subject, enc(msg), v2)?.problem).toContain('unsupported protocol major version 2');
    expect(validator.check(s.work(msg.runId, 'b', 'beta'), enc(msg), headersOf(msg))?.problem).toContain('not the');
  });

  it('takes a user\'s cancel and a stop order in the cancels bucket, and ignores a delete', () => {
    const key = `$KV.${s.bucket('cancels')}.${newRunId()}`;
    expect(validator.check(key, enc({ at: new Date().toISOString() }))).toBeUndefined();
    expect(validator.check(key, enc({ status: 'cancelled', failFast: true, message: 'a step failed' }))).toBeUndefined();
    expect(validator.check(key, enc({ status: 'paused', message: 'x' }))?.schema).toBe('cancels-entry');
    expect(validator.check(key, new Uint8Array(), (h) => (h === 'KV-Operation' ? 'DEL' : undefined))).toBeUndefined();
  });

  it('says when a payload is not JSON', () => {
    expect(validator.check(s.deadLetter('alpha'), new TextEncoder().encode('{'))?.problem).toMatch(/^not UTF-8 JSON/);
  });
});
