import { decodeStepMessage } from './step-message';
import { newRunId } from './ids';
import { RUN_ID_PATTERN } from './names';
import { Subjects } from './subjects';

const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const valid = () => ({
  v: 1,
  runId: newRunId(),
  pipeline: { name: 'p', resource: 'r', steps: [{ id: '1', name: 'one', driver: 'builder' }] },
  resource: { type: 'r', name: 'x', version: 1, spec: {}, metadata: {} },
  stepIndex: 0,
  mode: 'normal',
  outputs: {},
  createdAt: new Date(0).toISOString(),
});

describe('decodeStepMessage', () => {
  it('accepts a step message', () => {
    const d = decodeStepMessage(enc(valid()));
    expect(d.ok).toBe(true);
  });

  it.each<[string, unknown, string]>([
    ['garbage', 'not json', 'not UTF-8 JSON'],
    ['truncated JSON', '{"v":1,"runId":"x"', 'not UTF-8 JSON'],
    ['invalid UTF-8', new Uint8Array([0x7b, 0xff, 0x7d]), 'not UTF-8 JSON'],
    ['an array', [], 'not a JSON object'],
    ['another version', { ...valid(), v: 2 }, 'unsupported message version'],
    ['a bad run id', { ...valid(), runId: '../x' }, 'runId'],
    ['no steps', { ...valid(), pipeline: { name: 'p', steps: [] } }, 'pipeline snapshot'],
    ['a step driver with a wildcard', { ...valid(), pipeline: { name: 'p', steps: [{ id: '1', driver: 'a.>' }] } }, 'step 0'],
    ['an index out of range', { ...valid(), stepIndex: 3 }, 'stepIndex'],
    ['cleanup without outcome', { ...valid(), mode: 'cleanup' }, 'outcome'],
    ['no resource', { ...valid(), resource: null }, 'resource'],
    ['a bad machine', { ...valid(), machine: 'a b' }, 'machine'],
  ])('refuses %s with a reason', (_what, payload, reason) => {
    const data = payload instanceof Uint8Array ? payload : enc(payload);
    const d = decodeStepMessage(data);
    expect(d.ok).toBe(false);
    expect(!d.ok && d.reason).toContain(reason);
  });
});

describe('ids and subjects', () => {
  it('makes time-ordered run ids', () => {
    const a = newRunId(1_000);
    const b = newRunId(2_000);
    expect(a).toMatch(RUN_ID_PATTERN);
    expect(a < b).toBe(true);
  });

  it('builds every subject from the prefix and refuses unsafe tokens', () => {
    const s = new Subjects('ci.team-a');
    expect(s.work('01abc', 'build', 'builder')).toBe('ci.team-a.steps.01abc.build.builder.any');
    expect(s.work('01abc', 'build', 'builder', 'rack-1')).toBe('ci.team-a.steps.01abc.build.builder.rack-1');
    expect(s.workFor('builder', 'rack-1')).toBe('ci.team-a.steps.*.*.builder.rack-1');
    expect(s.runLog('01abc')).toBe('ci.team-a.steps.01abc.>');
    expect(s.runsStream).toBe('CI_TEAM-A_RUNS');
    expect(s.bucket('runs')).toBe('ci_team-a-runs');
    expect(s.logsEnd('01abc')).toBe('ci.team-a.logs.01abc.end');
    expect(() => s.work('01abc', 'x', 'a.b')).toThrow();
    expect(() => s.work('01abc', 'x.>', 'builder')).toThrow();
    expect(() => s.cancel('x.>')).toThrow();
    expect(() => new Subjects('bad prefix')).toThrow();
  });

  it('tells every kind of run record from its subject, whatever the step ids and driver names', () => {
    const s = new Subjects('ci.team-a');
    // Step ids that spell the other kinds' tokens cannot make one record look like another.
    for (const stepId of ['end', 'claim', 'run', 'retry']) {
      expect(s.parseRunRecord(s.work('r1', stepId, 'claim'))).toEqual({ kind: 'work', runId: 'r1', stepId, driver: 'claim', machine: undefined });
      expect(s.parseRunRecord(s.work('r1', stepId, 'end', 'm1'))).toEqual({ kind: 'work', runId: 'r1', stepId, driver: 'end', machine: 'm1' });
      expect(s.parseRunRecord(s.stepRecord('r1', stepId, 'claim'))).toEqual({ kind: 'claim', runId: 'r1', stepId });
      expect(s.parseRunRecord(s.stepRecord('r1', stepId, 'release'))).toEqual({ kind: 'release', runId: 'r1', stepId });
    }
    expect(s.parseRunRecord(s.runEnd('r1'))).toEqual({ kind: 'end', runId: 'r1' });
    expect(s.parseRunRecord('ci.team-a.steps.r1.build.bogus')).toBeUndefined();
    expect(s.parseRunRecord('ci.team-a.logs.r1.end')).toBeUndefined();
    expect(s.parseRunRecord('other.steps.r1.end')).toBeUndefined();
    expect(s.parseConsumer(s.consumer('builder', 'rack-1'))).toEqual({ driver: 'builder', machine: 'rack-1' });
    expect(s.parseConsumer(s.consumer('builder'))).toEqual({ driver: 'builder', machine: undefined });
    expect(s.parseConsumer('gateway-runs_x_y')).toBeUndefined();
  });
});
