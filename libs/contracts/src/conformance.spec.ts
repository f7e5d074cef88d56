import { readConformanceInstruction } from './conformance';

describe('readConformanceInstruction', () => {
  it('reads each action from a step config', () => {
    expect(readConformanceInstruction({ conformance: { action: 'succeed', data: { a: 1 } } })).toEqual({ action: 'succeed', data: { a: 1 }, message: undefined });
    expect(readConformanceInstruction({ conformance: { action: 'echo' } })).toEqual({ action: 'echo' });
    expect(readConformanceInstruction({ conformance: { action: 'fail', message: 'no' } })).toEqual({ action: 'fail', message: 'no' });
    expect(readConformanceInstruction({ conformance: { action: 'throw' } })).toEqual({ action: 'throw', message: 'conformance throw' });
    expect(readConformanceInstruction({ conformance: { action: 'sleep', ms: 10 } })).toEqual({ action: 'sleep', ms: 10 });
    expect(readConformanceInstruction({ conformance: { action: 'log', lines: 3 } })).toEqual({ action: 'log', lines: 3 });
  });

  it('says what is wrong with a missing or bad instruction', () => {
    expect(readConformanceInstruction(undefined)).toEqual({ error: 'the step has no conformance instruction (config.conformance)' });
    expect(readConformanceInstruction({ conformance: { action: 'dance' } })).toEqual({ error: 'unknown conformance action "dance" (one of succeed, echo, fail, throw, sleep, log)' });
    expect(readConformanceInstruction({ conformance: { action: 'sleep', ms: 'long' } })).toEqual({ error: 'conformance "sleep": ms must be a number of milliseconds' });
    expect(readConformanceInstruction({ conformance: { action: 'log', lines: -1 } })).toEqual({ error: 'conformance "log": lines must be a whole number' });
    expect(readConformanceInstruction({ conformance: { action: 'succeed', data: [1] } })).toEqual({ error: 'conformance "succeed": data must be an object' });
  });
});
