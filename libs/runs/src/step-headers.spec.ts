import { Headers, PROTOCOL_VERSION, newRunId, type StepMessage } from '@conveyor/contracts';
import { stepHeaderValues } from './step-headers';

describe('stepHeaderValues', () => {
  it('says the protocol version and what the message is for', () => {
    const runId = newRunId();
    const msg: StepMessage = {
      v: 1,
      runId,
      pipeline: { name: 'p', resource: 'r', steps: [{ id: 'a', name: 'A', driver: 'alpha' }, { id: 'b', name: 'B', driver: 'beta' }] },
      resource: { type: 'r', name: 'x', version: 3, spec: {}, metadata: {} },
      stepIndex: 1,
      mode: 'cleanup',
      outcome: { status: 'failed', message: 'no' },
      outputs: {},
      createdAt: new Date(0).toISOString(),
    };
    expect(stepHeaderValues(msg)).toEqual({
      [Headers.Protocol]: PROTOCOL_VERSION,
      [Headers.RunId]: runId,
      [Headers.Pipeline]: 'p',
      [Headers.Step]: 'b',
      [Headers.StepIndex]: '1',
      [Headers.Driver]: 'beta',
      [Headers.Resource]: 'r/x@3',
      [Headers.Mode]: 'cleanup',
    });
  });
});
